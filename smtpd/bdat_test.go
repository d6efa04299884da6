package smtpd

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
)

// endRecorder is a recorder that also reports how each Deliver ended, so a
// test can wait for the server to finish with a message it refused.
type endRecorder struct {
	recorder
	ended chan error
}

func (r *endRecorder) Deliver(ctx context.Context, env *envelope.Envelope, msg io.Reader) error {
	err := r.recorder.Deliver(ctx, env, msg)
	r.ended <- err
	return err
}

// TestCutShortTransfersNotDelivered cuts the client's side of the
// connection in the middle of a message, the way a client that crashes
// does, and checks that nothing is delivered. The BDAT LAST case is the
// one go-smtp v0.25.1 ends with a clean EOF (cutShortGuard).
func TestCutShortTransfersNotDelivered(t *testing.T) {
	rec := &endRecorder{ended: make(chan error, 1)}
	addr, _ := testServerWith(t, nil, func(o *Options) { o.Deliverer = rec })
	body := "From: dev@lan.test\r\nSubject: cut\r\n\r\n" + strings.Repeat("0123456789abcdef", 8) + "\r\n"
	cases := []struct {
		name, send string
		complete   bool
	}{
		{"BDAT LAST complete", "BDAT " + itoa(len(body)) + " LAST\r\n" + body, true},
		{"BDAT LAST cut short", "BDAT " + itoa(len(body)) + " LAST\r\n" + body[:len(body)/2], false},
		{"BDAT LAST cut after the header", "BDAT " + itoa(len(body)+500) + " LAST\r\n" + body, false},
		{"BDAT chunk then LAST cut short", "BDAT 40\r\n" + body[:40] + "BDAT " + itoa(len(body)-40) + " LAST\r\n" + body[40:60], false},
		{"DATA cut short", "DATA\r\n" + body[:len(body)/2], false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.all())
			c := greeted(t, addr)
			c.ehlo()
			expect(t, c.cmd("MAIL FROM:<dev@lan.test>"), "250")
			expect(t, c.cmd("RCPT TO:<ops@example.com>"), "250")
			if strings.HasPrefix(tc.send, "DATA") {
				expect(t, c.cmd("DATA"), "354")
				tc.send = strings.TrimPrefix(tc.send, "DATA\r\n")
			}
			c.write(tc.send)
			if !tc.complete {
				// The client is gone for reading: the rest never comes.
				c.conn.(*net.TCPConn).CloseWrite()
			}
			select {
			case err := <-rec.ended:
				if tc.complete != (err == nil) {
					t.Fatalf("Deliver ended with %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the server never handed the message to the Deliverer")
			}
			rest, _ := io.ReadAll(c.r)
			got := rec.all()
			if tc.complete {
				if len(got) != before+1 || string(got[len(got)-1].body) != body {
					t.Fatalf("complete message not delivered intact (%d messages)", len(got))
				}
				if !strings.Contains(string(rest), "250 2.0.0 queued as") {
					t.Errorf("reply %q, want 250", rest)
				}
				return
			}
			if len(got) != before {
				t.Fatalf("a message cut short was delivered: %q", got[len(got)-1].body)
			}
			if strings.Contains(string(rest), "queued as") {
				t.Errorf("a message cut short was answered %q", rest)
			}
		})
	}
}
