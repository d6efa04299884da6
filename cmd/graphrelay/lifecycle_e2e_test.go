package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
	"github.com/graphrelay/graphrelay/internal/testlog"
)

// A start that fails because a port is taken touches no spooled message:
// every listener is bound before the spool is opened, so no attempt is
// journaled, none is sent, and the waiting message's record is unchanged.
func TestStartWithPortTakenTouchesNoSpool(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	r := startRelay(t, cfg, fake)
	fake.SetGraphOutage(&graphtest.Fault{Status: 503})
	mustQueue(t, r.addr, "alerts@company.com", "waiting")
	dir := cfg.Queue.Dir
	// listed is the spool as "queue list" shows it, without the age,
	// which moves by itself.
	listed := func() string {
		_, out, _ := runQueueCmd(t, "list", "--json", "--dir", dir)
		var entries []map[string]any
		if err := json.Unmarshal([]byte(out), &entries); err != nil {
			t.Fatalf("queue list --json: %v\n%s", err, out)
		}
		for _, e := range entries {
			delete(e, "age_seconds")
		}
		b, _ := json.Marshal(entries)
		return string(b)
	}
	e2etest.WaitFor(t, time.Minute, "an attempt recorded", func() bool { return strings.Contains(listed(), "503") })
	r.app.Close()
	before, requests := listed(), len(fake.GraphRequests())
	// The message is due again (retry_max is 500ms): a start that got as
	// far as delivering would try it at once.
	time.Sleep(time.Second)

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg2 := *cfg
	cfg2.SMTP.Listeners = []config.Listener{{Name: "test", Address: taken.Addr().String()}}
	logs := testlog.New(t, "relay log")
	app := NewApp(&cfg2, slog.New(slog.NewTextHandler(logs, nil)))
	app.HTTPClient = fake.HTTPClient()
	if err := app.Start(context.Background()); err == nil {
		app.Close()
		t.Fatal("start succeeded on a port already taken")
	}
	if after := listed(); after != before {
		t.Errorf("the failed start changed the spool:\nbefore %s\nafter  %s", before, after)
	}
	if n := len(fake.GraphRequests()); n != requests {
		t.Errorf("the failed start sent %d requests", n-requests)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "journal", "*"))
	for _, s := range segs {
		if b, _ := os.ReadFile(s); len(b) > 0 {
			t.Errorf("journal segment %s written by the failed start: %s", s, b)
		}
	}
	if strings.Contains(logs.String(), "interrupted") {
		t.Errorf("the failed start logged an interrupted attempt:%s", logs)
	}
}

// Close with an idle client connected and a Graph request in flight: the
// idle session is closed at once instead of holding the shutdown until its
// deadline, no new attempt starts, the request in flight finishes and is
// not aborted, and Close returns within the configured budget.
func TestShutdownWithIdleClient(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{Latency: time.Second})
	cfg := queueConfig(t, fake, "alerts@company.com")
	const budget = 60 * time.Second
	cfg.SMTP.ShutdownTimeout = config.Duration(budget)
	cfg.Mailboxes[0].MaxConcurrency = 1
	r := startRelay(t, cfg, fake)

	idle, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	br := bufio.NewReader(idle)
	br.ReadString('\n')
	idle.Write([]byte("EHLO printer.lan\r\n"))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "250 ") {
			break
		}
	}
	mustQueue(t, r.addr, "alerts@company.com", "in flight")
	mustQueue(t, r.addr, "alerts@company.com", "waits")
	e2etest.WaitFor(t, time.Minute, "the first request in flight", func() bool { return inFlight(fake) })

	start := time.Now()
	if err := r.app.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	took := time.Since(start)
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadString('\n'); err == nil {
		t.Error("the idle session is still open after Close")
	}
	if took >= budget {
		t.Errorf("Close took %s, the whole budget: the idle client held it", took)
	}
	logs := r.logs.String()
	if strings.Contains(logs, "aborting them") || strings.Contains(logs, "msg=interrupted") {
		t.Errorf("a request in flight was aborted:%s", r.logs)
	}
	ds := fake.Deliveries()
	if len(ds) != 1 || ds[0].Message.Subject != "in flight" {
		t.Errorf("delivered %v; want only the message in flight, and no new attempt after Close began", subjects(ds))
	}
	_, out, _ := runQueueCmd(t, "list", "--json", "--dir", cfg.Queue.Dir)
	var left []struct {
		Attempts int `json:"attempts"`
	}
	if json.Unmarshal([]byte(out), &left) != nil || len(left) != 1 || left[0].Attempts != 0 {
		t.Errorf("spool after Close: %s; want the second message, never tried", out)
	}
}

// inFlight reports whether a Graph request has started and not ended.
func inFlight(fake *graphtest.Server) bool {
	return fake.MaxInFlight("alerts@company.com") > 0 && len(fake.Deliveries()) == 0
}
