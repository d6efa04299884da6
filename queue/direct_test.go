package queue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
)

// Direct mode waits in its mailbox's gate for a bounded time and then
// gives up with a temporary, throttled error that tells when to retry; it
// never has more requests in flight for a mailbox than its limit.
func TestDirectGateBoundedWait(t *testing.T) {
	s := newFakeSender()
	release := make(chan struct{})
	s.setScript(func(*envelope.Envelope, int) error {
		<-release
		return nil
	})
	d := NewDirect(s, DirectOptions{TmpDir: t.TempDir(), MaxWait: 100 * time.Millisecond,
		Mailboxes: []MailboxLimits{{Address: "one@example.com", MaxConcurrency: 1}}})
	first := make(chan error, 1)
	go func() {
		first <- d.Deliver(context.Background(), testEnv("one@example.com", "a@example.com"), strings.NewReader(testMessage("first")))
	}()
	eventually(t, time.Minute, "the first request in flight", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.inflight["one@example.com"] == 1
	})
	err := d.Deliver(context.Background(), testEnv("one@example.com", "b@example.com"), strings.NewReader(testMessage("second")))
	close(release)
	var th interface {
		Throttled() bool
		Temporary() bool
		RetryIn() time.Duration
	}
	if !errors.As(err, &th) || !th.Throttled() || !th.Temporary() || th.RetryIn() <= 0 {
		t.Fatalf("second message with the mailbox's only slot taken: %v; want a throttled, temporary error with a retry time", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.maxInflight["one@example.com"]; m != 1 {
		t.Errorf("%d requests in flight at once for a mailbox limited to 1", m)
	}
}

// A Retry-After in direct mode holds the mailbox's next request back, and
// the client is told to come back after it (capped at RetryMax).
func TestDirectRetryAfterIsAFloor(t *testing.T) {
	s := newFakeSender()
	var once sync.Once
	s.setScript(func(*envelope.Envelope, int) error {
		var err error
		once.Do(func() {
			err = &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 429, RetryAfter: time.Hour}
		})
		return err
	})
	d := NewDirect(s, DirectOptions{TmpDir: t.TempDir(), MaxWait: 50 * time.Millisecond, RetryMax: 2 * time.Minute})
	err := d.Deliver(context.Background(), testEnv("one@example.com", "a@example.com"), strings.NewReader(testMessage("first")))
	var ri interface{ RetryIn() time.Duration }
	if !errors.As(err, &ri) || ri.RetryIn() != 2*time.Minute {
		t.Fatalf("429 with Retry-After 1h: %v; want a retry time capped at 2m", err)
	}
	err = d.Deliver(context.Background(), testEnv("one@example.com", "a@example.com"), strings.NewReader(testMessage("second")))
	var th interface{ Throttled() bool }
	if !errors.As(err, &th) || !th.Throttled() {
		t.Fatalf("second message during the floor: %v; want it held back", err)
	}
	if n := len(s.allCalls()); n != 1 {
		t.Errorf("%d requests; the floor must hold the second back", n)
	}
}

// queue.workers 0 is the sum of the mailboxes' request limits, at least
// 16, so the default configuration can use Graph's whole budget.
func TestDefaultWorkers(t *testing.T) {
	many := make([]MailboxLimits, 16)
	tests := []struct {
		name  string
		boxes []MailboxLimits
		want  int
	}{
		{"none", nil, 16},
		{"one", []MailboxLimits{{Address: "a@x"}}, 16},
		{"sixteen at the default 4", many, 64},
		{"own limits", append(append([]MailboxLimits{}, many...), MailboxLimits{Address: "b@x", MaxConcurrency: 2}), 66},
	}
	for _, tt := range tests {
		if got := DefaultWorkers(tt.boxes, 4); got != tt.want {
			t.Errorf("%s: %d workers, want %d", tt.name, got, tt.want)
		}
	}
}
