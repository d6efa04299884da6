package main

import (
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// Whatever can be known before 250 is decided before 250, in both modes:
// a message too large for its path under large_messages: reject, a MIME
// passthrough message too large for one request, and an empty message
// (DATA then ".", or BDAT 0 LAST) are refused at DATA, and nothing is
// spooled, sent or dead-lettered.
func TestPreflightRefusesBeforeAccepting(t *testing.T) {
	t.Parallel()
	large, _ := e2etest.LargeMessage(4_000_000, 7) // about 5.4 MB of MIME
	mimeLarge, _ := e2etest.LargeMessage(2_700_000, 8)
	cases := []struct {
		name   string
		edit   func(*config.Config)
		raw    string
		bdat   bool
		code   int
		status string
	}{
		{"json over the request limit, large_messages reject",
			func(c *config.Config) { c.Delivery.LargeMessages = config.LargeReject }, string(large), false, 552, "5.3.4"},
		{"mime passthrough over the request limit",
			func(c *config.Config) { c.Delivery.Format = config.FormatMIME }, string(mimeLarge), false, 552, "5.3.4"},
		{"empty message by DATA", nil, "", false, 554, "5.6.0"},
		{"white space only by DATA", nil, "\r\n\r\n", false, 554, "5.6.0"},
		{"empty message by BDAT 0 LAST", nil, "", true, 554, "5.6.0"},
		{"empty message in mime format", func(c *config.Config) { c.Delivery.Format = config.FormatMIME }, "", false, 554, "5.6.0"},
	}
	for _, mode := range []string{config.ModeQueue, config.ModeDirect} {
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				fake := e2etest.NewFake(t, graphtest.Config{})
				cfg := queueConfig(t, fake, "scans@company.com")
				cfg.Delivery.Mode = mode
				if tc.edit != nil {
					tc.edit(cfg)
				}
				r := startRelay(t, cfg, fake)
				var code int
				var msg string
				if tc.bdat {
					code, msg = sendBDATEmpty(t, r.addr)
				} else {
					res, err := e2etest.SendRawSMTP(r.addr, "scanner@mfp.lan", []string{"alice@company.com"}, tc.raw, time.Minute)
					if err != nil {
						t.Fatal(err)
					}
					code, msg = res.Code, res.Msg
				}
				if code != tc.code || !strings.HasPrefix(msg, tc.status) {
					t.Fatalf("reply %d %s; want %d %s", code, msg, tc.code, tc.status)
				}
				if n := len(fake.Deliveries()); n != 0 {
					t.Errorf("%d messages reached Graph", n)
				}
				if mode == config.ModeQueue {
					for _, area := range []string{"queue", "failed"} {
						entries, _ := os.ReadDir(filepath.Join(cfg.Queue.Dir, area))
						if len(entries) != 0 {
							t.Errorf("%s/ holds %d files after a refusal", area, len(entries))
						}
					}
				}
			})
		}
	}
}

// sendBDATEmpty sends a transaction whose only chunk is "BDAT 0 LAST"
// (RFC 3030) and returns the reply to it.
func sendBDATEmpty(t *testing.T, addr string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	tc := textproto.NewConn(conn)
	step := func(expect int, line string) (int, string) {
		if line != "" {
			if err := tc.PrintfLine("%s", line); err != nil {
				t.Fatal(err)
			}
		}
		code, msg, err := tc.ReadResponse(expect)
		if err != nil && code == 0 {
			t.Fatalf("%s: %v", line, err)
		}
		return code, msg
	}
	step(220, "")
	if _, msg := step(250, "EHLO printer.lan"); !strings.Contains(msg, "CHUNKING") {
		t.Fatalf("CHUNKING not offered: %s", msg)
	}
	step(250, "MAIL FROM:<scanner@mfp.lan>")
	step(250, "RCPT TO:<alice@company.com>")
	code, msg := step(250, "BDAT 0 LAST")
	tc.PrintfLine("QUIT")
	return code, fmt.Sprint(msg)
}
