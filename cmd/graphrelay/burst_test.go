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

// TestBurstFromOneClient is a misconfigured device looping alerts: up to
// 10,000 messages on one connection (bounded to 60 s of sending), half of
// them as a mailbox paced at 120 per minute. Every message is accepted or
// deferred with a clean 4xx; every accepted message to the unpaced mailbox
// is delivered; the paced mailbox never starts two requests closer than
// its rate, and what it has not sent yet is still in the spool.
func TestBurstFromOneClient(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 messages")
	}
	const (
		maxMessages = 10000
		maxSending  = 60 * time.Second
		perMinute   = 120
	)
	cert := newAppCert(t, "graphrelay")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "alerts@company.com", "slow@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	cfg.Delivery.Mode = config.ModeQueue
	cfg.Queue.Dir = t.TempDir()
	cfg.Mailboxes[1].MessagesPerMinute = perMinute
	cfg.Log.Level = "warn" // 10,000 lifecycle lines would drown the test log
	r := startRelay(t, cfg, fake)

	c, err := smtp.Dial(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accepted := map[string]int{}
	deferred := 0
	start := time.Now()
	sent := 0
	for ; sent < maxMessages && time.Since(start) < maxSending; sent++ {
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
	t.Logf("sent %d messages in %v (%.0f/s): accepted %v, deferred %d", sent, sending, float64(sent)/sending.Seconds(), accepted, deferred)

	// Everything for the unpaced mailbox arrives.
	want := accepted["alerts@company.com"]
	deadline := time.Now().Add(60 * time.Second)
	var fast, slow int
	for time.Now().Before(deadline) {
		fast, slow = 0, 0
		for _, d := range fake.Deliveries() {
			if d.Mailbox == "alerts@company.com" {
				fast++
			} else {
				slow++
			}
		}
		if fast >= want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fast != want {
		t.Errorf("unpaced mailbox: %d delivered of %d accepted", fast, want)
	}
	// The paced mailbox keeps its interval between request starts.
	interval := time.Minute / perMinute
	var starts []time.Time
	for _, gr := range fake.GraphRequests() {
		if strings.EqualFold(gr.Mailbox, "slow@company.com") {
			starts = append(starts, gr.Start)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	// Pacing spaces the queue's attempt starts; each request then reaches
	// Graph after the attempt's journal fsync, which jitters single gaps by
	// some tens of milliseconds. The rate is what Exchange limits, so the
	// check is that k+1 requests never fit in less than k intervals, less
	// that jitter, for every k.
	const jitter = 100 * time.Millisecond
	for i := range starts {
		for k := 1; i+k < len(starts); k++ {
			if span := starts[i+k].Sub(starts[i]); span < time.Duration(k)*interval-jitter {
				t.Fatalf("paced mailbox: %d requests within %v, faster than %d per minute", k+1, span, perMinute)
			}
		}
	}
	// Nothing is lost: what the paced mailbox has not sent is still queued.
	entries, err := listSpool(cfg.Queue.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if slow+entries != accepted["slow@company.com"] {
		t.Errorf("paced mailbox: %d delivered + %d still spooled != %d accepted", slow, entries, accepted["slow@company.com"])
	}
	t.Logf("paced mailbox: %d requests over %v, %d still spooled", len(starts), time.Since(start).Round(time.Second), entries)
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
