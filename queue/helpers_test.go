package queue

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/internal/testlog"
)

// sendCall is one Send the fake saw.
type sendCall struct {
	id, mailbox string
	start, end  time.Time
	err         error
}

// fakeSender records Sends, counts concurrency per mailbox, and answers
// with script (nil: success).
type fakeSender struct {
	mu          sync.Mutex
	script      func(env *envelope.Envelope, call int) error
	hold        chan struct{} // when set, each Send waits for a value or close
	delay       time.Duration
	calls       []sendCall
	perID       map[string]int
	bodies      map[string][]byte
	envs        map[string]envelope.Envelope
	inflight    map[string]int
	maxInflight map[string]int
	total       int
	maxTotal    int
	delivered   chan string
}

func newFakeSender() *fakeSender {
	return &fakeSender{perID: map[string]int{}, bodies: map[string][]byte{}, envs: map[string]envelope.Envelope{},
		inflight: map[string]int{}, maxInflight: map[string]int{}, delivered: make(chan string, 1000)}
}

func (f *fakeSender) Send(ctx context.Context, env *envelope.Envelope, raw io.ReaderAt, size int64) (graph.Receipt, error) {
	body := make([]byte, size)
	if _, err := raw.ReadAt(body, 0); err != nil && err != io.EOF {
		return graph.Receipt{}, err
	}
	f.mu.Lock()
	start := time.Now()
	key := env.Mailbox.Address
	f.inflight[key]++
	f.maxInflight[key] = max(f.maxInflight[key], f.inflight[key])
	f.total++
	f.maxTotal = max(f.maxTotal, f.total)
	f.perID[env.ID]++
	n := f.perID[env.ID]
	script, hold, delay := f.script, f.hold, f.delay
	f.mu.Unlock()

	var err error
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if delay > 0 && err == nil {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err == nil && script != nil {
		err = script(env, n)
	}
	if err != nil && ctx.Err() != nil {
		err = &graph.Error{Op: "sendMail", Class: graph.Transient}
		err = fmt.Errorf("%w: %w", err, ctx.Err())
	}
	f.mu.Lock()
	f.inflight[key]--
	f.total--
	f.calls = append(f.calls, sendCall{id: env.ID, mailbox: key, start: start, end: time.Now(), err: err})
	if err == nil {
		f.bodies[env.ID] = body
		f.envs[env.ID] = *env
	}
	f.mu.Unlock()
	if err == nil {
		f.delivered <- env.ID
	}
	return graph.Receipt{RequestID: "req-" + env.ID, ClientRequestID: fmt.Sprintf("crid-%s-%d", env.ID, n)}, err
}

func (f *fakeSender) setScript(s func(env *envelope.Envelope, call int) error) {
	f.mu.Lock()
	f.script = s
	f.mu.Unlock()
}

func (f *fakeSender) callsFor(id string) []sendCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sendCall
	for _, c := range f.calls {
		if c.id == id {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSender) allCalls() []sendCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sendCall(nil), f.calls...)
}

// waitDelivered waits for n deliveries and returns their ids.
func (f *fakeSender) waitDelivered(t *testing.T, n int, timeout time.Duration) []string {
	t.Helper()
	var ids []string
	deadline := time.After(timeout)
	for len(ids) < n {
		select {
		case id := <-f.delivered:
			ids = append(ids, id)
		case <-deadline:
			t.Fatalf("%d of %d deliveries within %s", len(ids), n, timeout)
		}
	}
	return ids
}

// testOptions are fast settings on a fresh spool.
func testOptions(t *testing.T) Options {
	return Options{
		Dir:             t.TempDir(),
		Workers:         16,
		RetryInitial:    50 * time.Millisecond,
		RetryMax:        200 * time.Millisecond,
		MaxAge:          time.Hour,
		ControlInterval: 20 * time.Millisecond,
		FS:              noSyncFS{},
		Log:             testLogger(t),
	}
}

// noSyncFS skips fsync. Scheduling tests use it so that their timing does
// not depend on the disk (or on other processes' load on it); the spool
// tests check the durable path with the real one.
type noSyncFS struct{ OSFS }

func (noSyncFS) SyncDir(string) error { return nil }

func (noSyncFS) Create(path string) (File, error) {
	f, err := OSFS{}.Create(path)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) Reuse(path string, truncate bool) (File, error) {
	f, err := OSFS{}.Reuse(path, truncate)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) Append(path string) (File, error) {
	f, err := OSFS{}.Append(path)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }

// testLogger gives the test its own queue log; a failure shows its last
// lines and the file holding the rest.
func testLogger(t *testing.T) *slog.Logger {
	return testlog.New(t, "queue log").Logger()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startQueue opens and starts a queue, closed at the end of the test.
func startQueue(t *testing.T, opts Options, s Sender) *Queue {
	t.Helper()
	q, err := Open(opts, s)
	if err != nil {
		t.Fatal(err)
	}
	q.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q.Close(ctx)
	})
	return q
}

var subjectSeq struct {
	mu sync.Mutex
	n  int
}

// testEnv returns an envelope for mailbox from sender.
func testEnv(mailbox, from string) *envelope.Envelope {
	return &envelope.Envelope{ID: envelope.NewID(), Listener: "test", ClientIP: "192.0.2.7", Helo: "printer.lan",
		From: from, Recipients: []string{"alice@example.com", "bob@example.com"},
		Mailbox: envelope.Mailbox{Address: mailbox}, Format: envelope.FormatJSON, ReceivedAt: time.Now()}
}

func testMessage(subject string) string {
	return "From: Printer <printer@example.com>\r\nTo: alice@example.com\r\nSubject: " + subject +
		"\r\n\r\nscan attached\r\n"
}

// deliver spools one message and fails the test if it is refused.
func deliver(t *testing.T, q *Queue, mailbox, subject string) string {
	t.Helper()
	env := testEnv(mailbox, "printer@example.com")
	if err := q.Deliver(context.Background(), env, strings.NewReader(testMessage(subject))); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	return env.ID
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTextLogger(w *lockedBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitDeliveredUpTo returns the deliveries already made, at most n,
// without waiting for more.
func (f *fakeSender) waitDeliveredUpTo(n int) []string {
	var ids []string
	for len(ids) < n {
		select {
		case id := <-f.delivered:
			ids = append(ids, id)
		default:
			return ids
		}
	}
	return ids
}
