package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// Direct mode passes the same per-mailbox gate as queue mode: 12 clients
// sending as one mailbox to a Graph that answers in 300 ms never make
// Graph throttle (it answers 429 beyond 4 requests in flight), and every
// message is either delivered or answered 451 with a time to retry.
func TestDirectModeGateNoThrottling(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{Latency: 300 * time.Millisecond})
	cfg := queueConfig(t, fake, "scans@company.com")
	cfg.Delivery.Mode = config.ModeDirect
	r := startRelay(t, cfg, fake)
	const clients, each = 12, 4
	var mu sync.Mutex
	var delivered, busy int
	var other []string
	retry := regexp.MustCompile(`^4\.4\.5 .* try again in \d+ seconds`)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				res, err := e2etest.SendRawSMTP(r.addr, "scanner@mfp.lan", []string{"alice@company.com"},
					e2etest.SimpleMessage("scanner@mfp.lan", fmt.Sprintf("c%d m%d", c, i)), 2*time.Minute)
				mu.Lock()
				switch {
				case err != nil:
					other = append(other, err.Error())
				case res.Code == 250:
					delivered++
				case res.Code == 451 && retry.MatchString(res.Msg):
					busy++
				default:
					other = append(other, fmt.Sprintf("%d %s", res.Code, res.Msg))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var throttled int
	for _, g := range fake.GraphRequests() {
		if g.Status == 429 {
			throttled++
		}
	}
	if throttled != 0 {
		t.Errorf("Graph answered 429 %d times; the gate must keep direct mode within 4 requests in flight", throttled)
	}
	if len(other) > 0 {
		t.Errorf("replies other than 250 or 451 with a retry time: %v", other)
	}
	if delivered+busy != clients*each || len(fake.Deliveries()) != delivered {
		t.Errorf("%d delivered, %d busy, Graph has %d deliveries; want %d messages answered", delivered, busy, len(fake.Deliveries()), clients*each)
	}
	t.Logf("%d delivered, %d answered 451 with a retry time", delivered, busy)
}

// A 503 with Retry-After: 86400 does not outrank queue.max_age: with
// max_age 5s the message becomes a dead letter within seconds, by the
// scheduler and with one request only, and with the default notice
// settings its notice reaches the mailbox it was to be sent as (where
// Exchange puts its own non-delivery reports), sent as the notice mailbox.
func TestQueueRetryAfterBeyondMaxAge(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com", "scans@company.com")
	cfg.Queue.MaxAge = config.Duration(5 * time.Second)
	cfg.Queue.RetryMax = config.Duration(time.Hour)
	if def := config.Default().Queue; cfg.Queue.NoticeTo != def.NoticeTo || cfg.Queue.NoticeMailbox != def.NoticeMailbox {
		t.Fatal("the test must run with the default notice settings")
	}
	r := startRelay(t, cfg, fake)
	fake.FailGraph(graphtest.Fault{Mailbox: "scans@company.com", Status: 503, RetryAfter: "86400"})
	mustQueue(t, r.addr, "scans@company.com", "Held back")
	var failed []struct{ ID, Reason string }
	e2etest.WaitFor(t, time.Minute, "the dead letter in failed/", func() bool {
		code, out, _ := runQueueCmd(t, "failed", "--json", "--dir", cfg.Queue.Dir)
		failed = nil
		return code == 0 && json.Unmarshal([]byte(out), &failed) == nil && len(failed) == 1
	})
	if failed[0].Reason != "expired" {
		t.Errorf("dead letter reason %q, want expired", failed[0].Reason)
	}
	ds := fake.WaitDeliveries(1, 30*time.Second)
	if len(ds) != 1 || ds[0].Message.Subject != "[graphrelay] Undeliverable: Held back" {
		t.Fatalf("no notice delivered: %v", subjects(ds))
	}
	if to := addrs(ds[0].Message.To); ds[0].Mailbox != "alerts@company.com" || len(to) != 1 || to[0] != "scans@company.com" {
		t.Errorf("notice sent as %s to %v; want as alerts@company.com to scans@company.com", ds[0].Mailbox, to)
	}
	var sends int
	for _, g := range fake.GraphRequests() {
		if g.Mailbox == "scans@company.com" {
			sends++
		}
	}
	if sends != 1 {
		t.Errorf("%d requests for the held-back mailbox, want 1", sends)
	}
	if got := scrape(t, r.app.AdminAddr(), `graphrelay_messages_dead_lettered_total{mailbox="scans@company.com",reason="expired"}`); got != 1 {
		t.Errorf("dead letters counted: %v, want 1", got)
	}
}
