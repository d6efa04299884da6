package relay

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// With QuietSuccess (queue and cluster modes, which log "delivered"
// themselves) the success line is at debug level; without it (direct
// mode) at info. A failure is a warning either way.
func TestQuietSuccessLogsAtDebug(t *testing.T) {
	t.Parallel()
	raw := []byte("From: printer@mfp.lan\r\nTo: alice@company.com\r\nSubject: scan\r\n\r\nbody\r\n")
	for _, tc := range []struct {
		quiet bool
		want  string
	}{{false, "level=INFO msg=\"graph accepted message\""}, {true, "level=DEBUG msg=\"graph accepted message\""}} {
		fake := graphtest.New(t, graphtest.Config{})
		r, logs := newRelay(t, fake, []string{"Mail.Send"}, Options{QuietSuccess: tc.quiet})
		env := testEnvelope(envelope.FormatJSON, "alice@company.com")
		if _, err := r.Send(context.Background(), env, bytes.NewReader(raw), int64(len(raw))); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got := logs.String(); !strings.Contains(got, tc.want) || !strings.Contains(got, "id="+env.ID) {
			t.Errorf("QuietSuccess=%v: log %q, want a line with %s", tc.quiet, got, tc.want)
		}
	}
	fake := graphtest.New(t, graphtest.Config{})
	fake.FailGraph(graphtest.Fault{Status: 400, Code: "ErrorInvalidRecipients"})
	r, logs := newRelay(t, fake, []string{"Mail.Send"}, Options{QuietSuccess: true})
	env := testEnvelope(envelope.FormatJSON, "alice@company.com")
	if _, err := r.Send(context.Background(), env, bytes.NewReader(raw), int64(len(raw))); err == nil {
		t.Fatal("Send succeeded against a 400")
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN msg=\"graph send failed\"") {
		t.Errorf("a failure with QuietSuccess logged %q", got)
	}
}
