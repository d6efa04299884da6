package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// TestQueueTruncatedMessageIsQuarantined: a spooled message loses its
// tail while the daemon is down (a bad restore). The restarted daemon
// must not deliver it truncated: it moves it to damaged/, logs the file
// and what to do, and "graphrelay queue damaged" shows it.
func TestQueueTruncatedMessageIsQuarantined(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	spoolThenStop(t, fake, cfg, "cut short", "whole")

	msgs, _ := filepath.Glob(filepath.Join(cfg.Queue.Dir, "queue", "*.msg"))
	if len(msgs) != 2 {
		t.Fatalf("spool holds %d messages, want 2", len(msgs))
	}
	var victim string
	for _, m := range msgs {
		b, _ := os.ReadFile(m)
		if strings.Contains(string(b), "Subject: cut short") {
			victim = m
			os.WriteFile(m, b[:len(b)-10], 0o600)
		}
	}
	id := strings.TrimSuffix(filepath.Base(victim), ".msg")

	cfg2 := *cfg
	cfg2.SMTP.Listeners = []config.Listener{{Name: "test", Address: "127.0.0.1:0"}}
	r2 := startRelay(t, &cfg2, fake)
	ds := fake.WaitDeliveries(1, 10*time.Second)
	e2etest.WaitFor(t, time.Minute, "delivered log", func() bool { return strings.Contains(r2.logs.String(), "msg=delivered") })
	if got := subjects(fake.Deliveries()); len(got) != 1 || got[0] != "whole" {
		t.Errorf("delivered %v (first %d), want only the whole message", got, len(ds))
	}
	if !strings.Contains(r2.logs.String(), "file="+victim) {
		t.Errorf("no log line names %s", victim)
	}
	e2etest.WaitFor(t, time.Minute, "the damaged gauge", func() bool {
		return scrape(t, r2.app.AdminAddr(), "graphrelay_queue_damaged") == 1
	})
	code, out, errOut := runQueueCmd(t, "damaged", "--dir", cfg.Queue.Dir)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "cut short") || !strings.Contains(out, "1 damaged entry") {
		t.Errorf("queue damaged = %d\n%s%s", code, out, errOut)
	}
}
