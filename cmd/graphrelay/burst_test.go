package main

import (
	"crypto/x509"
	"fmt"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// TestBurstFromOneClient is a misconfigured device looping alerts: 10,000
// messages on one connection, half of them as a mailbox paced at 120 per
// minute. Every message is accepted or deferred with a clean 4xx; every
// accepted message to the unpaced mailbox is delivered; the paced mailbox
// never exceeds its rate; and what it has not sent yet is still in the
// spool. The test is bounded by the message count; nothing in it depends on
// how fast the machine is.
func TestBurstFromOneClient(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 messages")
	}
	t.Parallel()
	const (
		messages  = 10000
		perMinute = 120
		// lag bounds how much later than its dispatch a request reaches
		// the fake Graph (the attempt's journal fsync, a token, TLS on
		// loopback); a loaded machine stretches that to seconds, and only
		// the first request of a run of k can be late enough to squeeze
		// the run. A pacer running at even twice the rate breaks the
		// check once k passes 2·lag/interval = 20.
		lag = 5 * time.Second
		// stall is how long the deliveries may make no progress at all
		// before the test gives up on them.
		stall = 60 * time.Second
	)
	cert := newAppCert(t, "graphrelay")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "alerts@company.com", "slow@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	cfg.Delivery.Mode = config.ModeQueue
	cfg.Queue.Dir = t.TempDir()
	cfg.Mailboxes[1].MessagesPerMinute = perMinute
	cfg.Log.Level = "warn" // 10,000 lifecycle lines would drown the test log
	// 10,000 spool fsyncs would make the disk, not the relay, the subject.
	r := startRelayOnFS(t, cfg, fake, noSyncFS{})

	c, err := smtp.Dial(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accepted := map[string]int{}
	deferred := 0
	start := time.Now()
	for sent := range messages {
		from := "alerts@company.com"
		if sent%2 == 1 {
			from = "slow@company.com"
		}
		code := sendOn(t, c, from, fmt.Sprintf("From: %s\r\nSubject: alert %d\r\n\r\nUPS on battery\r\n", from, sent))
		switch {
		case code == 250:
			accepted[from]++
		case code >= 400 && code < 500:
			deferred++
		default:
			t.Fatalf("message %d answered %d; a burst must be accepted or deferred cleanly", sent, code)
		}
	}
	sending := time.Since(start)
	c.Quit()
	t.Logf("sent %d messages in %v (%.0f/s): accepted %v, deferred %d", messages, sending, messages/sending.Seconds(), accepted, deferred)

	// Everything for the unpaced mailbox arrives: wait as long as the
	// deliveries keep coming.
	want := accepted["alerts@company.com"]
	fast := 0
	for progress := time.Now(); fast < want && time.Since(progress) < stall; time.Sleep(100 * time.Millisecond) {
		n := 0
		for _, d := range fake.Deliveries() {
			if d.Mailbox == "alerts@company.com" {
				n++
			}
		}
		if n > fast {
			fast, progress = n, time.Now()
		}
	}
	if fast != want {
		t.Fatalf("unpaced mailbox: %d delivered of %d accepted, none for %v", fast, want, stall)
	}
	// Stop the daemon, so that no attempt is in flight while the spool is
	// counted.
	if err := r.app.Close(); err != nil {
		t.Errorf("close: %v", err)
	}

	// The paced mailbox keeps its rate: k+1 request starts never fit in
	// less than k intervals, less the lag.
	interval := time.Minute / perMinute
	var starts []time.Time
	for _, gr := range fake.GraphRequests() {
		if strings.EqualFold(gr.Mailbox, "slow@company.com") {
			starts = append(starts, gr.Start)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	if len(starts) < 2 {
		t.Fatalf("paced mailbox: %d requests; the pacing was never exercised", len(starts))
	}
	for i := range starts {
		for k := 1; i+k < len(starts); k++ {
			if span := starts[i+k].Sub(starts[i]); span < time.Duration(k)*interval-lag {
				t.Fatalf("paced mailbox: %d requests within %v, faster than %d per minute", k+1, span, perMinute)
			}
		}
	}
	// Nothing is lost: what the paced mailbox has not sent is still
	// queued. An attempt cut short by the shutdown after Graph took the
	// message leaves it both delivered and spooled (a possible duplicate,
	// which the queue logs); there can be no more of those than requests
	// in flight for the mailbox.
	slow := 0
	for _, d := range fake.Deliveries() {
		if d.Mailbox == "slow@company.com" {
			slow++
		}
	}
	entries, err := listSpool(cfg.Queue.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, acc := slow+entries, accepted["slow@company.com"]; got < acc || got > acc+cfg.Mailboxes[1].MaxConcurrency {
		t.Errorf("paced mailbox: %d delivered + %d still spooled, %d accepted", slow, entries, acc)
	}
	t.Logf("paced mailbox: %d requests over %v, %d still spooled", len(starts), starts[len(starts)-1].Sub(starts[0]).Round(time.Second), entries)
}

// sendOn runs one transaction on an open connection and returns the final
// reply code.
func sendOn(t *testing.T, c *smtp.Client, from, msg string) int {
	t.Helper()
	code := func(err error) int {
		if err == nil {
			return 250
		}
		if te, ok := err.(*textproto.Error); ok {
			c.Reset()
			return te.Code
		}
		t.Fatalf("transaction: %v", err)
		return 0
	}
	if err := c.Mail(from); err != nil {
		return code(err)
	}
	if err := c.Rcpt("ops@company.com"); err != nil {
		return code(err)
	}
	w, err := c.Data()
	if err != nil {
		return code(err)
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	return code(w.Close())
}

// listSpool counts the messages waiting in the spool (queue/FORMAT.md:
// one <id>.msg per message in dir/queue).
func listSpool(dir string) (int, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "queue"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".msg") && e.Type().IsRegular() {
			n++
		}
	}
	return n, nil
}
