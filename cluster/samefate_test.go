package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/cluster/natstest"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/queue"
)

// outcomeLog keeps the outcome lines a backend logs at info level or
// above, as "level message|keys".
type outcomeLog struct {
	mu    sync.Mutex
	lines []string
}

// outcomeLines are the lines queue.Fate writes for an attempt's outcome,
// and the line of a notice being queued.
var outcomeLines = []string{"delivered", "deferred", "failed", "interrupted", "deleted by admin", "queued",
	"possible duplicate: Graph may have accepted this message although no success was seen; a retry can deliver it twice"}

func (l *outcomeLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *outcomeLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *outcomeLog) WithGroup(string) slog.Handler            { return l }
func (l *outcomeLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo || !slices.Contains(outcomeLines, r.Message) {
		return nil
	}
	var keys []string
	r.Attrs(func(a slog.Attr) bool { keys = append(keys, a.Key); return true })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, r.Level.String()+" "+r.Message+"|"+strings.Join(keys, " "))
	return nil
}

func (l *outcomeLog) sorted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := slices.Clone(l.lines)
	slices.Sort(s)
	return s
}

// countingObserver keeps what a backend counts for metrics.
type countingObserver struct {
	mu     sync.Mutex
	events []string
}

func (o *countingObserver) add(e string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}
func (o *countingObserver) Delivered(mb string, _ time.Duration) { o.add("delivered " + mb) }
func (o *countingObserver) DeliveryFailed(mb, code, class string, retry bool) {
	o.add(fmt.Sprintf("failed %s %s %s %v", mb, code, class, retry))
}
func (o *countingObserver) DeadLettered(mb, reason string)        { o.add("dead " + mb + " " + reason) }
func (o *countingObserver) QueueStats(string, int, time.Duration) {}
func (o *countingObserver) Damaged(int)                           {}
func (o *countingObserver) Throttled(string, bool, time.Duration) {}
func (o *countingObserver) sorted() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := slices.Clone(o.events)
	slices.Sort(s)
	return s
}

// TestBackendsSettleAlike runs one scenario through the local queue and a
// cluster relay: a permanent failure (a dead letter and its failure
// notice), a transient failure (a delay notice, then a delivery) and a
// plain delivery. Both backends settle outcomes through queue.Fate, so
// they must log the same outcome lines with the same fields, and count
// the same events.
func TestBackendsSettleAlike(t *testing.T) {
	subjects := []string{"[graphrelay] Undeliverable: fate-dead", "[graphrelay] Delayed: fate-slow", "fate-slow", "fate-ok"}
	newScenario := func() *recordingSender {
		s := newSender(time.Millisecond)
		var mu sync.Mutex
		tries := map[string]int{}
		s.fail = func(subject string, _ int) error {
			mu.Lock()
			defer mu.Unlock()
			tries[subject]++
			switch {
			case subject == "fate-dead":
				return &graph.Error{Op: "sendMail", Class: graph.Permanent, Status: 400, Code: "ErrorInvalidRecipients"}
			case subject == "fate-slow" && tries[subject] == 1:
				return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503, Code: "ServiceUnavailable"}
			}
			return nil
		}
		return s
	}
	mailbox := envelope.Mailbox{Address: "alerts@company.com"}
	// run sends the scenario's messages through deliver and waits until
	// the backend logged a delivery for each of the four messages that
	// are delivered (the two originals and the two notices).
	run := func(t *testing.T, s *recordingSender, logs *outcomeLog, deliver func(*envelope.Envelope, io.Reader) error) {
		for _, sub := range []string{"fate-dead", "fate-slow", "fate-ok"} {
			if err := deliver(testEnvelope(mailbox.Address), bytes.NewReader(message(sub, 10))); err != nil {
				t.Fatal(err)
			}
		}
		waitDelivered(t, s, subjects, time.Minute)
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			n := 0
			for _, l := range logs.sorted() {
				if strings.HasPrefix(l, "INFO delivered|") {
					n++
				}
			}
			if n >= len(subjects) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("logged %d deliveries, want %d: %q", n, len(subjects), logs.sorted())
			}
		}
	}

	localLog, localObs, localSender := &outcomeLog{}, &countingObserver{}, newScenario()
	lq, err := queue.Open(queue.Options{Dir: t.TempDir(), RetryInitial: 100 * time.Millisecond, RetryMax: 300 * time.Millisecond,
		Mailboxes: []queue.MailboxLimits{{Address: mailbox.Address, MaxConcurrency: 4}},
		NoticeTo:  []string{"admin@company.com"}, NoticeMailbox: mailbox, DelayNoticeAfter: time.Nanosecond,
		Log: slog.New(localLog), Observer: localObs}, localSender)
	if err != nil {
		t.Fatal(err)
	}
	lq.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lq.Close(ctx)
	})
	run(t, localSender, localLog, func(env *envelope.Envelope, r io.Reader) error {
		return lq.Deliver(context.Background(), env, r)
	})

	clusterLog, clusterObs, clusterSender := &outcomeLog{}, &countingObserver{}, newScenario()
	nc := natstest.Start(t, 1)
	cs := relays(t, nc, 1, clusterSender, func(o *Options) {
		o.Replicas = 1
		o.NoticeTo, o.NoticeMailbox, o.DelayNoticeAfter = []string{"admin@company.com"}, mailbox, time.Nanosecond
		o.Log, o.Observer = slog.New(clusterLog), clusterObs
	})
	run(t, clusterSender, clusterLog, func(env *envelope.Envelope, r io.Reader) error {
		return cs[0].Deliver(context.Background(), env, r)
	})

	local, clustered := localLog.sorted(), clusterLog.sorted()
	if len(local) != 8 { // 4 delivered, 1 deferred, 1 failed, 2 notices queued
		t.Errorf("the local queue logged %d outcome lines, want 8:\n%s", len(local), strings.Join(local, "\n"))
	}
	if !slices.Equal(local, clustered) {
		t.Errorf("outcome lines differ\nlocal queue:\n %s\ncluster:\n %s", strings.Join(local, "\n "), strings.Join(clustered, "\n "))
	}
	if l, c := localObs.sorted(), clusterObs.sorted(); !slices.Equal(l, c) {
		t.Errorf("counted events differ\nlocal queue: %q\ncluster:     %q", l, c)
	}
}
