package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/graphrelay/graphrelay/cluster/natstest"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/queue"
)

// recordingSender stands in for Graph: it records every request's start
// and end and the mailbox's concurrency, and answers with fail's verdict.
type recordingSender struct {
	latency time.Duration
	fail    func(subject string, n int) error

	mu        sync.Mutex
	inflight  map[string]int
	maxFlight map[string]int
	calls     []call
	delivered map[string]int // by subject
}

type call struct {
	subject    string
	start, end time.Time
	err        error
}

func newSender(latency time.Duration) *recordingSender {
	return &recordingSender{latency: latency, inflight: map[string]int{}, maxFlight: map[string]int{}, delivered: map[string]int{}}
}

func (s *recordingSender) Send(ctx context.Context, env *envelope.Envelope, raw io.ReaderAt, size int64) (graph.Receipt, error) {
	body, err := io.ReadAll(io.NewSectionReader(raw, 0, size))
	if err != nil {
		return graph.Receipt{}, err
	}
	subject := subjectOf(body)
	mb := env.Mailbox.Address
	s.mu.Lock()
	s.inflight[mb]++
	s.maxFlight[mb] = max(s.maxFlight[mb], s.inflight[mb])
	n := len(s.calls)
	s.calls = append(s.calls, call{subject: subject, start: time.Now()})
	s.mu.Unlock()
	select {
	case <-time.After(s.latency):
	case <-ctx.Done():
	}
	var ferr error
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		ferr = fail(subject, n)
	}
	s.mu.Lock()
	s.inflight[mb]--
	s.calls[n].end, s.calls[n].err = time.Now(), ferr
	if ferr == nil {
		s.delivered[subject]++
	}
	s.mu.Unlock()
	return graph.Receipt{ClientRequestID: fmt.Sprintf("crid-%d", n)}, ferr
}

func subjectOf(body []byte) string {
	for _, l := range strings.Split(string(body), "\r\n") {
		if s, ok := strings.CutPrefix(l, "Subject: "); ok {
			return s
		}
	}
	return ""
}

func message(subject string, pad int) []byte {
	return []byte("From: alerts@company.com\r\nTo: alice@company.com\r\nSubject: " + subject + "\r\n\r\n" +
		strings.Repeat("x", pad) + "\r\n")
}

func testEnvelope(mailbox string) *envelope.Envelope {
	return &envelope.Envelope{ID: envelope.NewID(), Listener: "test", ClientIP: "127.0.0.1", From: "alerts@company.com",
		Recipients: []string{"alice@company.com"}, Mailbox: envelope.Mailbox{Address: mailbox},
		Format: envelope.FormatJSON, ReceivedAt: time.Now()}
}

// relays opens n Cluster instances, each with its own NATS connection, as
// n relay processes would.
func relays(t *testing.T, nc *natstest.Cluster, n int, s queue.Sender, mutate func(*Options)) []*Cluster {
	t.Helper()
	var cs []*Cluster
	for i := range n {
		o := Options{URLs: nc.URLs(), Replicas: len(nc.Nodes), Lease: 3 * time.Second, Name: fmt.Sprintf("relay%d", i),
			RetryInitial: 100 * time.Millisecond, RetryMax: 300 * time.Millisecond, StoreTimeout: 5 * time.Second,
			Mailboxes: []queue.MailboxLimits{{Address: "alerts@company.com", MaxConcurrency: 4}},
			Log:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel})).With("relay", i)}
		if mutate != nil {
			mutate(&o)
		}
		c, err := Open(context.Background(), o, s)
		if err != nil {
			t.Fatalf("open relay %d: %v", i, err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c.Close(ctx)
		})
		cs = append(cs, c)
	}
	return cs
}

// waitDelivered waits until every subject was delivered at least once.
func waitDelivered(t *testing.T, s *recordingSender, subjects []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s.mu.Lock()
		var missing []string
		for _, sub := range subjects {
			if s.delivered[sub] == 0 {
				missing = append(missing, sub)
			}
		}
		s.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			t.Fatalf("%d of %d messages never delivered, e.g. %v", len(missing), len(subjects), missing[:min(5, len(missing))])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSharedBudget: three relays on one R3 stream, one mailbox limited to
// 4 concurrent requests, 12 clients spread over the relays: never more
// than 4 requests in flight for the mailbox, every message delivered once.
func TestSharedBudget(t *testing.T) {
	nc := natstest.Start(t, 3)
	s := newSender(20 * time.Millisecond)
	cs := relays(t, nc, 3, s, nil)
	const clients, each = 12, 10
	var wg sync.WaitGroup
	var subjects []string
	var mu sync.Mutex
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				sub := fmt.Sprintf("budget-%d-%d", c, i)
				if err := cs[c%3].Deliver(context.Background(), testEnvelope("alerts@company.com"), bytes.NewReader(message(sub, 100))); err != nil {
					t.Errorf("deliver %s: %v", sub, err)
					return
				}
				mu.Lock()
				subjects = append(subjects, sub)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	waitDelivered(t, s, subjects, 60*time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.maxFlight["alerts@company.com"]; m > 4 || m < 2 {
		t.Errorf("at most %d requests were in flight for the mailbox; want 2 to 4 (the limit is 4, shared by 3 relays)", m)
	}
	for sub, n := range s.delivered {
		if n != 1 {
			t.Errorf("%s delivered %d times without any crash", sub, n)
		}
	}
	t.Logf("%d messages, max in flight %d", len(subjects), s.maxFlight["alerts@company.com"])
	waitEmpty(t, cs[0])
}

// waitEmpty waits until delivered mail left nothing behind: no work item,
// no body chunk or metadata, no record.
func waitEmpty(t *testing.T, c *Cluster) {
	t.Helper()
	ctx := context.Background()
	var left string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		q, err1 := c.st.stream.Info(ctx)
		b, err2 := c.st.bodyStream.Info(ctx)
		keys, err3 := c.st.records.Keys(ctx)
		if err1 != nil || err2 != nil || (err3 != nil && !errors.Is(err3, jetstream.ErrNoKeysFound)) {
			t.Fatal(err1, err2, err3)
		}
		left = fmt.Sprintf("%d work items, %d body messages, %d records", q.State.Msgs, b.State.Msgs, len(keys))
		if q.State.Msgs == 0 && b.State.Msgs == 0 && len(keys) == 0 {
			return
		}
	}
	t.Errorf("after delivery the cluster still holds %s", left)
}

// TestRetryAfterShared: a 429 with Retry-After seen by one relay holds
// back the mailbox's requests on every relay until the floor passes.
func TestRetryAfterShared(t *testing.T) {
	nc := natstest.Start(t, 3)
	s := newSender(10 * time.Millisecond)
	var once sync.Once
	s.fail = func(subject string, n int) error {
		var err error
		if subject == "ra-throttled" {
			once.Do(func() {
				err = &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 429, Code: "ApplicationThrottled", RetryAfter: 2 * time.Second}
			})
		}
		return err
	}
	// retry_max caps a Retry-After; 5s lets the 2s one through whole.
	cs := relays(t, nc, 3, s, func(o *Options) { o.RetryMax = 5 * time.Second })
	if err := cs[0].Deliver(context.Background(), testEnvelope("alerts@company.com"), bytes.NewReader(message("ra-throttled", 10))); err != nil {
		t.Fatal(err)
	}
	// Wait for the 429, then load the other relays.
	var throttledEnd time.Time
	for deadline := time.Now().Add(30 * time.Second); throttledEnd.IsZero(); time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		for _, c := range s.calls {
			if c.err != nil && !c.end.IsZero() {
				throttledEnd = c.end
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the throttled request never happened")
		}
	}
	subjects := []string{"ra-throttled"}
	for i := range 12 {
		sub := fmt.Sprintf("ra-%d", i)
		subjects = append(subjects, sub)
		if err := cs[1+i%2].Deliver(context.Background(), testEnvelope("alerts@company.com"), bytes.NewReader(message(sub, 10))); err != nil {
			t.Fatal(err)
		}
	}
	waitDelivered(t, s, subjects, 60*time.Second)
	floor := throttledEnd.Add(2 * time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	later := 0
	for _, c := range s.calls {
		if c.start.After(throttledEnd) {
			later++
			// The floor is in the shared state before the lease is
			// released; a few milliseconds of clock reading apart.
			if c.start.Before(floor.Add(-50 * time.Millisecond)) {
				t.Errorf("request for %s started %v after the 429, before its Retry-After floor (2s)", c.subject, c.start.Sub(throttledEnd))
			}
		}
	}
	if later < 12 {
		t.Errorf("only %d requests after the 429; want the 12 sent through the other relays and the retry", later)
	}
}

// TestNoQuorumNo250: with two of three NATS servers down, a message
// cannot be stored with R3, and Deliver says so with a temporary error
// instead of accepting it.
func TestNoQuorumNo250(t *testing.T) {
	nc := natstest.Start(t, 3)
	s := newSender(time.Millisecond)
	cs := relays(t, nc, 1, s, func(o *Options) { o.URLs = nc.URLs()[:1]; o.StoreTimeout = 3 * time.Second })
	if err := cs[0].Deliver(context.Background(), testEnvelope("alerts@company.com"), bytes.NewReader(message("quorum-ok", 10))); err != nil {
		t.Fatalf("with all servers up: %v", err)
	}
	nc.Kill(nc.Nodes[1])
	nc.Kill(nc.Nodes[2])
	err := cs[0].Deliver(context.Background(), testEnvelope("alerts@company.com"), bytes.NewReader(message("quorum-lost", 10)))
	var tmp interface{ Temporary() bool }
	if err == nil || !errors.As(err, &tmp) || !tmp.Temporary() {
		t.Fatalf("Deliver without a quorum = %v; want a temporary error (451), never nil (250)", err)
	}
	// The surviving server notices the lost quorum within its election
	// timeout; Ready must say so then.
	for deadline := time.Now().Add(time.Minute); cs[0].Ready(context.Background()) == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Ready keeps reporting nil without a quorum")
		}
	}
}

// TestLargeBody: a 30 MB message is stored whole (NATS' default payload
// limit is 1 MB) and reaches the Sender byte for byte.
func TestLargeBody(t *testing.T) {
	nc := natstest.Start(t, 3)
	s := newSender(time.Millisecond)
	var got []byte
	var gotMu sync.Mutex
	s.fail = nil
	cs := relays(t, nc, 1, &bodySender{recordingSender: s, got: func(b []byte) { gotMu.Lock(); got = b; gotMu.Unlock() }}, nil)
	body := message("large", 30_000_000)
	start := time.Now()
	if err := cs[0].Deliver(context.Background(), testEnvelope("alerts@company.com"), bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	stored := time.Since(start)
	waitDelivered(t, s, []string{"large"}, 2*time.Minute)
	gotMu.Lock()
	defer gotMu.Unlock()
	if !bytes.Equal(got, body) {
		t.Fatalf("the Sender got %d bytes, not the %d sent", len(got), len(body))
	}
	t.Logf("30 MB: stored in %v, delivered %v after the 250", stored, time.Since(start)-stored)
}

type bodySender struct {
	*recordingSender
	got func([]byte)
}

func (b *bodySender) Send(ctx context.Context, env *envelope.Envelope, raw io.ReaderAt, size int64) (graph.Receipt, error) {
	data, _ := io.ReadAll(io.NewSectionReader(raw, 0, size))
	b.got(data)
	return b.recordingSender.Send(ctx, env, raw, size)
}

var testLogLevel = func() slog.Level {
	if os.Getenv("CLUSTER_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}()

// TestDocumentedPermissions runs a relay and the admin commands as an
// nkey user allowed exactly Permissions (and replies on _INBOX.>), which
// docs/deploy.md lists: everything works, and Check says so.
func TestDocumentedPermissions(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "relay.nk")
	os.WriteFile(seedFile, seed, 0o600)
	var allow []string
	for _, p := range Permissions {
		allow = append(allow, strconv.Quote(p))
	}
	nc := natstest.StartWith(t, 3, fmt.Sprintf(`authorization {
  users = [
    {nkey: %s, permissions: {publish: [%s], subscribe: ["_INBOX.>"]}}
  ]
}`, pub, strings.Join(allow, ", ")), nkeyOption(t, seedFile))
	s := newSender(time.Millisecond)
	s.fail = func(subject string, n int) error {
		if subject == "perm-dead" {
			return &graph.Error{Op: "sendMail", Class: graph.Permanent, Status: 400, Code: "ErrorInvalidRecipients"}
		}
		return nil
	}
	cs := relays(t, nc, 1, s, func(o *Options) { o.NKeyFile = seedFile })
	for _, sub := range []string{"perm-ok", "perm-dead"} {
		if err := cs[0].Deliver(context.Background(), testEnvelope("alerts@company.com"), bytes.NewReader(message(sub, 10))); err != nil {
			t.Fatalf("deliver %s as the restricted user: %v", sub, err)
		}
	}
	waitDelivered(t, s, []string{"perm-ok"}, time.Minute)
	opts := Options{URLs: nc.URLs(), NKeyFile: seedFile, Replicas: 3}
	if detail, err := Check(context.Background(), opts); err != nil || !strings.Contains(detail, "read and write permitted") {
		t.Errorf("Check as the restricted user: %q, %v", detail, err)
	}
	admin, err := OpenAdmin(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var dead []*queue.Record
	for deadline := time.Now().Add(time.Minute); len(dead) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		dead, _ = admin.Failed()
	}
	if len(dead) != 1 {
		t.Fatalf("dead letters as the restricted user: %d", len(dead))
	}
	if m, err := admin.Show(dead[0].Envelope.ID); err != nil || !strings.Contains(string(m.Header), "Subject: perm-dead") {
		t.Errorf("show as the restricted user: %v", err)
	}
	s.mu.Lock()
	s.fail = nil
	s.mu.Unlock()
	if resp, err := admin.Do(queue.Request{Op: queue.OpRequeue, ID: dead[0].Envelope.ID}); err != nil || !resp.OK {
		t.Fatalf("requeue as the restricted user: %+v %v", resp, err)
	}
	waitDelivered(t, s, []string{"perm-dead"}, time.Minute)

	// A user without them is refused, and Check says what is missing.
	if _, err := Check(context.Background(), Options{URLs: nc.URLs(), Replicas: 3}); err == nil {
		t.Error("Check without credentials succeeded")
	}
}

func nkeyOption(t *testing.T, seedFile string) nats.Option {
	opt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

// TestPermissionsDocumented: docs/deploy.md lists every subject of
// Permissions.
func TestPermissionsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(Permissions, "_INBOX.>") {
		if !strings.Contains(string(doc), "`"+p+"`") {
			t.Errorf("docs/deploy.md does not list %s", p)
		}
	}
}

// TestTLSToNATS: with servers that require TLS and a client certificate,
// a relay configured with their CA and its certificate stores and
// delivers; one without the CA, or without the certificate, is refused
// at Open.
func TestTLSToNATS(t *testing.T) {
	tf := natstest.TLSFiles(t)
	nc := natstest.StartWith(t, 1, fmt.Sprintf("tls {\n  cert_file: %q\n  key_file: %q\n  ca_file: %q\n  verify: true\n}",
		tf.ServerCert, tf.ServerKey, tf.CA), nats.RootCAs(tf.CA), nats.ClientCert(tf.ClientCert, tf.ClientKey))
	s := newSender(time.Millisecond)
	cs := relays(t, nc, 1, s, func(o *Options) {
		o.CAFile, o.CertFile, o.KeyFile = tf.CA, tf.ClientCert, tf.ClientKey
		o.Replicas = 1
	})
	if err := cs[0].Deliver(context.Background(), testEnvelope("alerts@company.com"), bytes.NewReader(message("tls-ok", 10))); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, s, []string{"tls-ok"}, time.Minute)
	if _, err := Open(context.Background(), Options{URLs: nc.URLs(), Replicas: 1}, s); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Open without the servers' CA = %v; want a certificate error", err)
	}
	if _, err := Open(context.Background(), Options{URLs: nc.URLs(), Replicas: 1, CAFile: tf.CA}, s); err == nil {
		t.Error("Open without a client certificate succeeded against a server that requires one")
	}
}

// lineReader hands out at most one line per Read, as the SMTP DATA
// reader does.
type lineReader struct{ r *bytes.Reader }

func (l lineReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		b, err := l.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		p[n] = b
		n++
		if b == '\n' {
			break
		}
	}
	return n, nil
}

// TestBodyChunksFull: a body read a line at a time is still stored in
// full 128 KiB chunks, not one chunk per line.
func TestBodyChunksFull(t *testing.T) {
	nc := natstest.Start(t, 1)
	s := newSender(time.Millisecond)
	// Graph is down, so the body stays in the cluster to be looked at.
	s.fail = func(string, int) error {
		return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503, Code: "ServiceUnavailable"}
	}
	cs := relays(t, nc, 1, s, func(o *Options) { o.Replicas = 1 })
	body := []byte("Subject: lines\r\n\r\n" + strings.Repeat(strings.Repeat("y", 76)+"\r\n", 20000))
	env := testEnvelope("alerts@company.com")
	if err := cs[0].Deliver(context.Background(), env, lineReader{bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	info, err := cs[0].st.bodies.GetInfo(context.Background(), env.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (len(body) + 128*1024 - 1) / (128 * 1024); int(info.Chunks) != want || info.Size != uint64(len(body)) {
		t.Errorf("%d bytes in %d chunks; want %d chunks of 128 KiB", info.Size, info.Chunks, want)
	}
}

// TestNotices: a dead letter and a delayed message get the local queue's
// notices, sent through the cluster like any message.
func TestNotices(t *testing.T) {
	nc := natstest.Start(t, 1)
	s := newSender(time.Millisecond)
	var mu sync.Mutex
	tries := 0
	s.fail = func(subject string, n int) error {
		mu.Lock()
		defer mu.Unlock()
		switch subject {
		case "notice-dead":
			return &graph.Error{Op: "sendMail", Class: graph.Permanent, Status: 400, Code: "ErrorInvalidRecipients"}
		case "notice-slow":
			if tries++; tries == 1 {
				return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503, Code: "ServiceUnavailable"}
			}
		}
		return nil
	}
	cs := relays(t, nc, 1, s, func(o *Options) {
		o.Replicas = 1
		o.NoticeTo = []string{"admin@company.com"}
		o.NoticeMailbox = envelope.Mailbox{Address: "alerts@company.com"}
		o.DelayNoticeAfter = time.Nanosecond
	})
	for _, sub := range []string{"notice-dead", "notice-slow"} {
		if err := cs[0].Deliver(context.Background(), testEnvelope("alerts@company.com"), bytes.NewReader(message(sub, 10))); err != nil {
			t.Fatal(err)
		}
	}
	waitDelivered(t, s, []string{"[graphrelay] Undeliverable: notice-dead", "[graphrelay] Delayed: notice-slow", "notice-slow"}, time.Minute)
}

// TestAdminRetry: "queue retry" sends a message now that waits for a
// backoff of up to an hour, and its old work item is dropped, so it is
// delivered once.
func TestAdminRetry(t *testing.T) {
	nc := natstest.Start(t, 1)
	s := newSender(time.Millisecond)
	var once sync.Once
	s.fail = func(subject string, n int) error {
		var err error
		once.Do(func() {
			err = &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503, Code: "ServiceUnavailable"}
		})
		return err
	}
	cs := relays(t, nc, 1, s, func(o *Options) { o.Replicas = 1; o.RetryInitial, o.RetryMax = time.Hour, time.Hour })
	env := testEnvelope("alerts@company.com")
	if err := cs[0].Deliver(context.Background(), env, bytes.NewReader(message("retry-me", 10))); err != nil {
		t.Fatal(err)
	}
	admin, err := OpenAdmin(Options{URLs: nc.URLs(), Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		recs, _ := admin.List()
		if len(recs) == 1 && len(recs[0].Attempts) == 1 && recs[0].Attempts[0].Outcome == queue.OutcomeTransient {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first attempt never failed")
		}
	}
	if resp, err := admin.Do(queue.Request{Op: queue.OpRetry, ID: env.ID}); err != nil || !resp.OK {
		t.Fatalf("retry: %+v %v", resp, err)
	}
	waitDelivered(t, s, []string{"retry-me"}, time.Minute)
	waitEmpty(t, cs[0])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.delivered["retry-me"] != 1 {
		t.Errorf("delivered %d times", s.delivered["retry-me"])
	}
}
