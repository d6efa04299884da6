package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// BenchmarkQueueEndToEnd measures the daemon's real wiring in queue mode,
// with the durable spool on the test's temporary directory, against the
// fake Graph on loopback (per-mailbox concurrency 4, no added latency).
// Each op is one 4 KB message sent over its own SMTP connection, as
// printers do, and delivered to Graph. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench QueueEndToEnd -benchtime 3000x ./cmd/graphrelay/
//
// It reports messages per second accepted (to the last 250) and
// delivered (to Graph's last 202), and p50/p99 from the end of DATA to
// the 250 and from the 250 to Graph's 202.
func BenchmarkQueueEndToEnd(b *testing.B) {
	for _, mailboxes := range []int{1, 4} {
		for _, clients := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("mailboxes=%d/clients=%d", mailboxes, clients), func(b *testing.B) {
				benchQueue(b, clients, mailboxes)
			})
		}
	}
}

func benchQueue(b *testing.B, clients, nMailboxes int) {
	fake := e2etest.NewFake(b, graphtest.Config{})
	var mailboxes []string
	for i := range nMailboxes {
		mailboxes = append(mailboxes, fmt.Sprintf("bench%d@company.com", i))
	}
	cfg := fakeConfig(fake, mailboxes...)
	cfg.Graph.ClientSecret = e2etest.Secret
	cfg.Delivery.Mode = config.ModeQueue
	cfg.Queue.Dir = filepath.Join(b.TempDir(), "spool")
	cfg.SMTP.Listeners[0].MaxConnections = 1000
	cfg.SMTP.Listeners[0].MaxConnectionsPerIP = 1000
	if errs := config.Validate(cfg); len(errs) > 0 {
		b.Fatal(errs)
	}
	// Log as production does (text, info), into nothing: formatting the
	// lifecycle lines is part of the cost.
	app := NewApp(cfg, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	app.HTTPClient = fake.HTTPClient()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := app.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	addr := app.Addrs()["test"]
	// Warm up: the token, TLS connections to the fake, page cache.
	for i := range nMailboxes * 4 {
		if _, err := e2etest.SendRawSMTP(addr, mailboxes[i%nMailboxes], []string{"alice@company.com"}, benchMessage(mailboxes[i%nMailboxes], "warmup"), 10*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	if ds := fake.WaitDeliveries(nMailboxes*4, 30*time.Second); len(ds) != nMailboxes*4 {
		b.Fatalf("warm-up: %d delivered", len(ds))
	}
	fake.Reset()

	n := b.N
	type sample struct {
		subject           string
		dataDone, replied time.Time
	}
	samples := make([]sample, n)
	var next int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := int(next)
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				from := mailboxes[i%nMailboxes]
				subject := fmt.Sprintf("bench-%d", i)
				res, err := e2etest.SendRawSMTP(addr, from, []string{"alice@company.com"}, benchMessage(from, subject), 30*time.Second)
				if err == nil && res.Code != 250 {
					err = fmt.Errorf("%s: %d %s", subject, res.Code, res.Msg)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				samples[i] = sample{subject, res.DataDone, res.Replied}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		b.Fatalf("%d failures, first: %v", len(errs), errs[0])
	}
	ds := fake.WaitDeliveries(n, 2*time.Minute)
	b.StopTimer()
	if len(ds) < n {
		b.Fatalf("%d of %d delivered within 2 minutes", len(ds), n)
	}
	delivered := map[string]time.Time{}
	var lastDelivery time.Time
	for _, d := range ds {
		if _, dup := delivered[d.Message.Subject]; !dup {
			delivered[d.Message.Subject] = d.At
		}
		if d.At.After(lastDelivery) {
			lastDelivery = d.At
		}
	}
	var lastReply time.Time
	accept := make([]time.Duration, 0, n)
	deliver := make([]time.Duration, 0, n)
	for _, s := range samples {
		accept = append(accept, s.replied.Sub(s.dataDone))
		at, ok := delivered[s.subject]
		if !ok {
			b.Fatalf("%s not delivered", s.subject)
		}
		deliver = append(deliver, at.Sub(s.replied))
		if s.replied.After(lastReply) {
			lastReply = s.replied
		}
	}
	acceptRate := float64(n) / lastReply.Sub(start).Seconds()
	deliverRate := float64(n) / lastDelivery.Sub(start).Seconds()
	b.ReportMetric(acceptRate, "accepted/s")
	b.ReportMetric(deliverRate, "delivered/s")
	b.ReportMetric(ms(pct(accept, 50)), "p50-250-ms")
	b.ReportMetric(ms(pct(accept, 99)), "p99-250-ms")
	b.ReportMetric(ms(pct(deliver, 50)), "p50-202-ms")
	b.ReportMetric(ms(pct(deliver, 99)), "p99-202-ms")
	b.ReportMetric(0, "ns/op") // wall time per message is meaningless with concurrency
	fmt.Printf("queue e2e: %d mailbox(es), %2d clients, %5d msgs: %7.0f accepted/s, %7.0f delivered/s; DATA→250 p50 %.2fms p99 %.2fms; 250→202 p50 %.2fms p99 %.2fms\n",
		nMailboxes, clients, n, acceptRate, deliverRate, ms(pct(accept, 50)), ms(pct(accept, 99)), ms(pct(deliver, 50)), ms(pct(deliver, 99)))
}

// benchMessage is a 4 KB message: a realistic header and a text body.
func benchMessage(from, subject string) string {
	hdr := fmt.Sprintf("From: Printer <%s>\r\nTo: Alice <alice@company.com>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@bench>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		from, subject, time.Now().Format(time.RFC1123Z), subject)
	line := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 2)[:70] + "\r\n"
	var body strings.Builder
	for body.Len()+len(hdr) < 4096-len(line) {
		body.WriteString(line)
	}
	return hdr + body.String()
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
