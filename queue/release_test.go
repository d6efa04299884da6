package queue

import (
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
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
	opts := testOptions(t)
	opts.Mailboxes = []MailboxLimits{{Address: "one@example.com", MaxConcurrency: 1}}
	obs := &blockingObserver{release: make(chan struct{}), timeout: 10 * time.Second, timedOut: make(chan struct{})}
	opts.Observer = obs
	s := newFakeSender()
	s.hold = make(chan struct{})
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
	eventually(t, 5*time.Second, "first attempt under way", func() bool {
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
