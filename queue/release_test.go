package queue

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
)

// blockingObserver holds the first Delivered call until released, so the
// test can tell whether the next attempt starts before the first one's
// outcome is recorded.
type blockingObserver struct {
	nopObserver
	once     sync.Once
	release  chan struct{}
	timeout  time.Duration
	timedOut chan struct{}
}

func (o *blockingObserver) Delivered(string, time.Duration) {
	o.once.Do(func() {
		select {
		case <-o.release:
		case <-time.After(o.timeout):
			close(o.timedOut)
		}
	})
}

// A gate slot serves the next waiting message as soon as Graph has
// answered, not when the previous attempt's bookkeeping (removal, log line,
// metrics) is done: with one slot, the second message's request leaves
// while the first one's Delivered is still held.
func TestSlotFreedBeforeBookkeeping(t *testing.T) {
	opts, s := oneSlotRig(t)
	obs := &blockingObserver{release: make(chan struct{}), timeout: 10 * time.Second, timedOut: make(chan struct{})}
	opts.Observer = obs
	var first string
	var mu sync.Mutex
	s.setScript(func(env *envelope.Envelope, call int) error {
		mu.Lock()
		defer mu.Unlock()
		if first == "" {
			first = env.ID
		} else if env.ID != first {
			// The second message's request is out while the first's
			// outcome is still being recorded.
			select {
			case <-obs.release:
			default:
				close(obs.release)
			}
		}
		return nil
	})
	q := startQueue(t, opts, s)
	a := deliver(t, q, "one@example.com", "first")
	eventually(t, time.Minute, "first attempt under way", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.total == 1
	})
	b := deliver(t, q, "one@example.com", "second")
	s.hold <- struct{}{} // the first request is answered
	s.hold <- struct{}{} // the second one, once it is out
	got := s.waitDelivered(t, 2, 15*time.Second)
	select {
	case <-obs.timedOut:
		t.Fatal("the second message waited for the first one's bookkeeping: its slot was not handed on when Graph answered")
	default:
	}
	if got[0] != a || got[1] != b {
		t.Fatalf("delivered %v, want %v then %v", got, a, b)
	}
	if m := s.maxInflight["one@example.com"]; m != 1 {
		t.Fatalf("%d requests in flight at once for a mailbox limited to 1", m)
	}
}

// With every request slot of a mailbox busy, the next attempt is prepared
// ahead: its journal line is written (and, with a real FS, fsynced) while
// the request before it is still out, and its own request leaves only
// when that one ends. No more than max_concurrency requests are ever out.
func TestAttemptPreparedAheadWaitsForRequestSlot(t *testing.T) {
	opts, s := oneSlotRig(t)
	q := startQueue(t, opts, s)
	ids := []string{
		deliver(t, q, "one@example.com", "first"),
		deliver(t, q, "one@example.com", "second"),
		deliver(t, q, "one@example.com", "third"),
	}
	journaled := func() int {
		entries, err := readJournal(filepath.Join(opts.Dir, "journal"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, id := range ids {
			if _, ok := entries[id]; ok {
				n++
			}
		}
		return n
	}
	// Which of the first two leaves first is a race between their
	// preparations; that two are journaled while one request is out is not.
	eventually(t, time.Minute, "a second message journaled while the first request is out", func() bool {
		return journaled() == 2
	})
	s.mu.Lock()
	out, calls := s.total, len(s.calls)
	s.mu.Unlock()
	if out != 1 || calls != 0 {
		t.Fatalf("%d requests out and %d answered while the first one is held, want 1 and 0", out, calls)
	}
	if n := q.inflightOf("one@example.com"); n != 2 {
		t.Fatalf("%d attempts under way, want the request and one prepared ahead: the ahead allowance is max_concurrency", n)
	}
	for range 3 {
		s.hold <- struct{}{}
	}
	s.waitDelivered(t, 3, 10*time.Second)
	if n := journaled(); n != 3 {
		t.Fatalf("%d of 3 delivered messages journaled", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.maxInflight["one@example.com"]; m != 1 {
		t.Fatalf("%d requests in flight at once for a mailbox limited to 1", m)
	}
}

// A Retry-After floor raised while an attempt prepared ahead waits for
// its request slot holds that request back too: it does not leave before
// the floor.
func TestPreparedAheadRespectsNewFloor(t *testing.T) {
	opts, s := oneSlotRig(t)
	var first string
	var mu sync.Mutex
	s.setScript(func(env *envelope.Envelope, call int) error {
		mu.Lock()
		defer mu.Unlock()
		if first == "" {
			first = env.ID
			return &graph.Error{Op: "sendMail", Status: 429, Class: graph.Transient, RetryAfter: 150 * time.Millisecond}
		}
		return nil
	})
	q := startQueue(t, opts, s)
	deliver(t, q, "one@example.com", "first")
	b := deliver(t, q, "one@example.com", "second")
	eventually(t, time.Minute, "the second message prepared ahead", func() bool {
		entries, err := readJournal(filepath.Join(opts.Dir, "journal"))
		if err != nil {
			t.Fatal(err)
		}
		_, ok := entries[b]
		return ok
	})
	go func() {
		for {
			select {
			case s.hold <- struct{}{}:
			case <-q.quit:
				return
			}
		}
	}()
	s.waitDelivered(t, 2, 10*time.Second)
	calls := s.allCalls()
	floor := calls[0].end.Add(150 * time.Millisecond)
	for _, c := range calls[1:] {
		if c.start.Before(floor) {
			t.Fatalf("request for %s left at %v, before the Retry-After floor %v", c.id, c.start, floor)
		}
	}
	if len(s.callsFor(b)) == 0 {
		t.Fatal("the message prepared ahead was never sent")
	}
}

// Preparing ahead uses only workers that no mailbox's free request slot
// may want: with queue.workers at the sum of the mailboxes' limits, a busy
// mailbox's prepared attempts must not take the workers another mailbox
// needs when its mail arrives. Here A's four requests hang at Graph with
// twelve more messages waiting; B's message must still reach Graph while
// they hang.
func TestPreparedAheadLeavesWorkersForOtherMailboxes(t *testing.T) {
	opts := testOptions(t)
	opts.Mailboxes = []MailboxLimits{
		{Address: "a@example.com", MaxConcurrency: 4},
		{Address: "b@example.com", MaxConcurrency: 4},
	}
	opts.Workers = 8
	s := newFakeSender()
	s.hold = make(chan struct{})
	q := startQueue(t, opts, s)
	t.Cleanup(func() { close(s.hold) }) // before the queue's Close
	for range 16 {
		deliver(t, q, "a@example.com", "a")
	}
	eventually(t, time.Minute, "A's four requests out", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.inflight["a@example.com"] == 4
	})
	deliver(t, q, "b@example.com", "b")
	eventually(t, time.Minute, "B's request out while A's hang (a prepared attempt of A took its worker)", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.inflight["b@example.com"] == 1
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.maxInflight["a@example.com"]; m > 4 {
		t.Fatalf("%d requests in flight at once for a mailbox limited to 4", m)
	}
}

// An attempt prepared ahead has sent nothing: once the daemon stops
// dispatching (StopDispatch, then Close), it must not send its request
// when the request before it ends, and its message stays in the spool for
// the next start.
func TestPreparedAheadNotMadeAfterStopDispatch(t *testing.T) {
	opts, s := oneSlotRig(t)
	q := startQueue(t, opts, s)
	deliver(t, q, "one@example.com", "first")
	deliver(t, q, "one@example.com", "second")
	eventually(t, time.Minute, "the first request out and the second attempt prepared ahead", func() bool {
		s.mu.Lock()
		out := s.total
		s.mu.Unlock()
		return out == 1 && q.inflightOf("one@example.com") == 2
	})
	q.StopDispatch()
	s.hold <- struct{}{} // the first request is answered
	s.waitDelivered(t, 1, time.Minute)
	// Without the fix the second request would now be out and held: the
	// deadline ends it, so the test fails instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	sent := 0
	for _, n := range s.perID {
		sent += n
	}
	s.mu.Unlock()
	if sent != 1 {
		t.Fatalf("%d requests sent, want 1: the attempt prepared ahead sent its request after dispatching stopped", sent)
	}
	ids, err := os.ReadDir(filepath.Join(opts.Dir, "queue"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := 0
	for _, e := range ids {
		if strings.HasSuffix(e.Name(), ".msg") {
			msgs++
		}
	}
	if msgs != 1 {
		t.Fatalf("%d messages left in the spool, want the second one", msgs)
	}
}

// oneSlotRig returns options for one mailbox allowed a single request at a
// time, and a sender that holds each request until the test lets it go.
func oneSlotRig(t *testing.T) (Options, *fakeSender) {
	opts := testOptions(t)
	opts.Mailboxes = []MailboxLimits{{Address: "one@example.com", MaxConcurrency: 1}}
	s := newFakeSender()
	s.hold = make(chan struct{})
	return opts, s
}
