package main

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// fakeEventLog records events as the Windows event log would receive them.
type fakeEventLog struct {
	mu     sync.Mutex
	events []string // "TYPE eid: message"
}

func (f *fakeEventLog) add(kind string, eid uint32, msg string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, fmt.Sprintf("%s %d: %s", kind, eid, msg))
	return nil
}
func (f *fakeEventLog) Info(eid uint32, msg string) error    { return f.add("INFO", eid, msg) }
func (f *fakeEventLog) Warning(eid uint32, msg string) error { return f.add("WARN", eid, msg) }
func (f *fakeEventLog) Error(eid uint32, msg string) error   { return f.add("ERROR", eid, msg) }

func TestEventLogHandler(t *testing.T) {
	t.Parallel()
	el := &fakeEventLog{}
	var level slog.LevelVar
	log := slog.New(newEventLogHandler(el, &level))

	log.Debug("hidden at info")
	log.Info("message accepted", "id", "06h0", "rcpts", 2)
	log.With("listener", "lan").WithGroup("tls").Warn("weak protocol", "version", "1.0")
	log.Error("startup failed", "err", "listen tcp 0.0.0.0:25: bind: permission denied")
	level.Set(slog.LevelDebug)
	log.Debug("shown at debug")

	want := []string{
		"INFO 1: message accepted\r\nid=06h0 rcpts=2",
		"WARN 2: weak protocol\r\nlistener=lan tls.version=1.0",
		`ERROR 3: startup failed` + "\r\n" + `err="listen tcp 0.0.0.0:25: bind: permission denied"`,
		"INFO 1: shown at debug",
	}
	if strings.Join(el.events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%q\nwant:\n%q", el.events, want)
	}
}

func TestEventLogHandlerConcurrentAndLong(t *testing.T) {
	t.Parallel()
	el := &fakeEventLog{}
	var level slog.LevelVar
	h := newEventLogHandler(el, &level)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slog.New(h).With("worker", i).Info("delivered", "n", i)
		}()
	}
	wg.Wait()
	for _, e := range el.events {
		var w, n int
		if _, err := fmt.Sscanf(e, "INFO 1: delivered\r\nworker=%d n=%d", &w, &n); err != nil || w != n {
			t.Errorf("event mixed up between goroutines: %q", e)
		}
	}
	if len(el.events) != 20 {
		t.Errorf("%d events, want 20", len(el.events))
	}

	el.events = nil
	slog.New(h).Info(strings.Repeat("é", maxEventChars))
	got := el.events[0]
	if len(got) > maxEventChars+len("INFO 1: [truncated]")+1 || !strings.HasSuffix(got, "é [truncated]") {
		t.Errorf("long event: %d bytes, ends %q", len(got), got[len(got)-20:])
	}
}
