package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
)

func TestDeliverSpoolsThenDelivers(t *testing.T) {
	s := newFakeSender()
	opts := testOptions(t)
	q := startQueue(t, opts, s)
	id := deliver(t, q, "alerts@example.com", "first")
	s.waitDelivered(t, 1, 5*time.Second)
	if got := string(s.bodies[id]); got != testMessage("first") {
		t.Errorf("sent body = %q", got)
	}
	eventually(t, time.Minute, "message removed after delivery", func() bool { return len(messageFiles(opts.Dir)) == 0 })
}

// TestAttemptRecordedBeforeSend: while Graph holds the request, the record
// on disk already counts the attempt.
func TestAttemptRecordedBeforeSend(t *testing.T) {
	s := newFakeSender()
	s.hold = make(chan struct{})
	opts := testOptions(t)
	q := startQueue(t, opts, s)
	id := deliver(t, q, "alerts@example.com", "held")
	eventually(t, time.Minute, "send started", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.perID[id] == 1
	})
	entries, err := readJournal(filepath.Join(opts.Dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := entries[id]; !ok || e.N != 1 || !e.NextTry.After(e.Start) {
		t.Errorf("journal during the attempt = %+v", entries)
	}
	a, _ := OpenAdmin(opts.Dir)
	if recs, _ := a.List(); len(recs) != 1 || len(recs[0].Attempts) != 1 || recs[0].Attempts[0].Outcome != OutcomeStarted {
		t.Errorf("queue list during the attempt = %+v", recs)
	}
	close(s.hold)
	s.waitDelivered(t, 1, 5*time.Second)
}

func TestPerMailboxAndGlobalConcurrency(t *testing.T) {
	s := newFakeSender()
	s.delay = 20 * time.Millisecond
	opts := testOptions(t)
	opts.Workers = 6
	opts.Mailboxes = []MailboxLimits{{Address: "two@example.com", MaxConcurrency: 2}}
	q := startQueue(t, opts, s)
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mb := []string{"a@example.com", "b@example.com", "two@example.com"}[i%3]
			deliver(t, q, mb, "load")
		}()
	}
	wg.Wait()
	s.waitDelivered(t, 60, 20*time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.maxInflight["a@example.com"] > 4 || s.maxInflight["b@example.com"] > 4 {
		t.Errorf("in flight per mailbox = %v; the default limit is 4", s.maxInflight)
	}
	if s.maxInflight["two@example.com"] > 2 {
		t.Errorf("two@ had %d in flight, its limit is 2", s.maxInflight["two@example.com"])
	}
	if s.maxTotal > 6 {
		t.Errorf("%d in flight overall; queue.workers is 6", s.maxTotal)
	}
	if s.maxInflight["a@example.com"] < 2 {
		t.Errorf("mailbox a never had parallel requests (%d); the limit is not used", s.maxInflight["a@example.com"])
	}
}

// TestRetryAfterIsAMailboxFloor: a 429 with Retry-After on one mailbox
// holds every message of that mailbox, while another keeps flowing. Both
// are shown by the order of the requests, not by a stopwatch: no request
// for the throttled mailbox starts before its Retry-After has passed, and
// every request for the other mailbox starts before the throttled one's
// first retry. Retry-After is long enough that a loaded machine dispatches
// five messages well inside it.
func TestRetryAfterIsAMailboxFloor(t *testing.T) {
	s := newFakeSender()
	const ra = 3 * time.Second
	var once sync.Once
	throttled := make(chan time.Time, 1)
	s.setScript(func(env *envelope.Envelope, n int) error {
		if env.Mailbox.Address != "busy@example.com" {
			return nil
		}
		var err error
		once.Do(func() {
			throttled <- time.Now()
			err = &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 429, Code: "TooManyRequests", RetryAfter: ra}
		})
		return err
	})
	opts := testOptions(t)
	opts.RetryMax = 5 * time.Second // Retry-After is honoured up to retry_max
	q := startQueue(t, opts, s)
	first := deliver(t, q, "busy@example.com", "b0")
	throttleEnd := <-throttled
	floor := throttleEnd.Add(ra)
	eventually(t, time.Minute, "the 429 is recorded", func() bool {
		st, err := q.spool.read(areaQueue, first)
		return err == nil && len(st.rec.Attempts) == 1 && st.rec.Attempts[0].Outcome == OutcomeTransient
	})
	for i := range 3 {
		deliver(t, q, "busy@example.com", "b"+string(rune('1'+i)))
	}
	for range 5 {
		deliver(t, q, "free@example.com", "f")
	}
	s.waitDelivered(t, 5+4, 30*time.Second)
	var retry time.Time // the throttled mailbox's first request after the 429
	for _, c := range s.allCalls() {
		if c.mailbox == "busy@example.com" && c.start.After(throttleEnd) {
			if c.start.Before(floor) {
				t.Errorf("a request for the throttled mailbox %s after the 429, before Retry-After elapsed", c.start.Sub(throttleEnd))
			}
			if retry.IsZero() || c.start.Before(retry) {
				retry = c.start
			}
		}
	}
	for _, c := range s.allCalls() {
		if c.mailbox == "free@example.com" && !c.start.Before(retry) {
			t.Errorf("a request for the free mailbox waited for the throttled mailbox's retry (%s after it)", c.start.Sub(retry))
		}
	}
	if n := len(s.callsFor(first)); n != 2 {
		t.Errorf("the throttled message was tried %d times, want 2", n)
	}
}

// Pacing is measured when the request leaves, not when the attempt is
// scheduled: with one slot and a first request that is slow, the messages
// queued behind it still leave at least the pacing gap apart.
func TestPacingSpacesRequests(t *testing.T) {
	s := newFakeSender()
	var once sync.Once
	s.setScript(func(*envelope.Envelope, int) error {
		once.Do(func() { time.Sleep(250 * time.Millisecond) })
		return nil
	})
	opts := testOptions(t)
	opts.Mailboxes = []MailboxLimits{{Address: "paced@example.com", MaxConcurrency: 1, MessagesPerMinute: 600}} // one per 100ms
	q := startQueue(t, opts, s)
	const n, interval = 6, 100 * time.Millisecond
	for range n {
		deliver(t, q, "paced@example.com", "p")
	}
	s.waitDelivered(t, n, 10*time.Second)
	var starts []time.Time
	for _, c := range s.allCalls() {
		starts = append(starts, c.start)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	// The fake Sender notes a start a little after the gate let the request
	// leave, and a busy machine stretches that for one request more than
	// for another, so single gaps can look short. Over k intervals the lag
	// counts once: k+1 starts never fit in k intervals less lag, which a
	// pacer running at twice the rate breaks (after the slow first request,
	// its 4 intervals take 200ms).
	const lag = 150 * time.Millisecond
	for i := range starts {
		for k := 1; i+k < len(starts); k++ {
			if span := starts[i+k].Sub(starts[i]); span < time.Duration(k)*interval-lag {
				t.Errorf("%d requests left within %s; pacing is one per %s", k+1, span, interval)
			}
		}
	}
}

func TestTransientThenDelivered(t *testing.T) {
	s := newFakeSender()
	s.setScript(func(env *envelope.Envelope, n int) error {
		if n < 3 {
			return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503, Code: "ServiceUnavailable"}
		}
		return nil
	})
	opts := testOptions(t)
	q := startQueue(t, opts, s)
	id := deliver(t, q, "alerts@example.com", "retry me")
	s.waitDelivered(t, 1, 10*time.Second)
	if n := len(s.callsFor(id)); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
	eventually(t, time.Minute, "removed", func() bool { return len(messageFiles(opts.Dir)) == 0 })
}

func TestPermanentFailureIsDeadLetteredWithNotice(t *testing.T) {
	s := newFakeSender()
	s.setScript(func(env *envelope.Envelope, n int) error {
		if env.Mailbox.Address == "denied@example.com" {
			return &graph.Error{Op: "sendMail", Class: graph.Permanent, Status: 403, Code: "ErrorAccessDenied",
				Message: "Access to OData is disabled.", RequestID: "rid-403"}
		}
		return nil
	})
	opts := testOptions(t)
	opts.NoticeTo = []string{"postmaster@example.com"}
	opts.NoticeMailbox = envelope.Mailbox{Address: "alerts@example.com"}
	q := startQueue(t, opts, s)
	id := deliver(t, q, "denied@example.com", "Quarterly report")

	// The notice is delivered as alerts@ to the postmaster.
	ids := s.waitDelivered(t, 1, 10*time.Second)
	nid := ids[0]
	nenv := s.envs[nid]
	if nenv.Mailbox.Address != "alerts@example.com" || strings.Join(nenv.Recipients, ",") != "postmaster@example.com" || nenv.From != "" {
		t.Errorf("notice envelope = %+v", nenv)
	}
	body := string(s.bodies[nid])
	for _, want := range []string{"X-Graphrelay-Notice: failed; id=" + id, "Quarterly report", "alice@example.com",
		"ErrorAccessDenied", "rid-403", "message/rfc822", "queue requeue " + id} {
		if !strings.Contains(body, want) {
			t.Errorf("notice lacks %q", want)
		}
	}
	if n := len(s.callsFor(id)); n != 1 {
		t.Errorf("a permanent failure was tried %d times", n)
	}
	a, _ := OpenAdmin(opts.Dir)
	eventually(t, time.Minute, "notice delivered and removed", func() bool {
		recs, _ := a.List()
		return len(recs) == 0
	})
	failed, _ := a.Failed()
	if len(failed) != 1 || failed[0].Envelope.ID != id {
		t.Fatalf("failed/ = %+v", failed)
	}
	d := failed[0].Dead
	if d == nil || d.Reason != "permanent" || d.Code != "ErrorAccessDenied" || d.RequestID != "rid-403" || d.NoticeID != nid {
		t.Errorf("dead letter = %+v", d)
	}
	at := failed[0].Attempts
	if len(at) != 1 || at[0].Outcome != OutcomePermanent || at[0].Status != 403 || at[0].ClientRequestID == "" {
		t.Errorf("attempts = %+v", at)
	}
}

// No notice is sent about a notice, nor for a message from <>.
func TestNoNoticeForNoticesOrNullSender(t *testing.T) {
	s := newFakeSender()
	perm := &graph.Error{Op: "sendMail", Class: graph.Permanent, Status: 404, Code: "ErrorInvalidUser"}
	s.setScript(func(env *envelope.Envelope, n int) error { return perm }) // every mailbox fails, the notice's too
	opts := testOptions(t)
	opts.NoticeTo = []string{"postmaster@example.com"}
	opts.NoticeMailbox = envelope.Mailbox{Address: "alerts@example.com"}
	q := startQueue(t, opts, s)
	bounce := testEnv("alerts@example.com", "")
	if err := q.Deliver(context.Background(), bounce, strings.NewReader(testMessage("bounce"))); err != nil {
		t.Fatal(err)
	}
	deliver(t, q, "alerts@example.com", "normal")
	a, _ := OpenAdmin(opts.Dir)
	// The bounce and the normal message fail; only the normal one gets a
	// notice, which fails too and gets none.
	eventually(t, time.Minute, "three dead letters", func() bool {
		recs, _ := a.Failed()
		return len(recs) == 3
	})
	time.Sleep(100 * time.Millisecond)
	failed, _ := a.Failed()
	notices := 0
	for _, r := range failed {
		if r.Notice != "" {
			notices++
			if r.Dead.NoticeID != "" {
				t.Error("a notice caused a notice")
			}
		}
		if r.Envelope.From == "" && r.Notice == "" && r.Dead.NoticeID != "" {
			t.Error("a message from <> caused a notice")
		}
	}
	if len(failed) != 3 || notices != 1 {
		t.Errorf("failed/ holds %d messages, %d notices; want 3 and 1", len(failed), notices)
	}
}

func TestExpiredAfterMaxAge(t *testing.T) {
	s := newFakeSender()
	s.setScript(func(env *envelope.Envelope, n int) error {
		return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503}
	})
	opts := testOptions(t)
	opts.MaxAge = 300 * time.Millisecond
	q := startQueue(t, opts, s)
	id := deliver(t, q, "alerts@example.com", "never")
	a, _ := OpenAdmin(opts.Dir)
	eventually(t, time.Minute, "expired", func() bool {
		recs, _ := a.Failed()
		return len(recs) == 1
	})
	failed, _ := a.Failed()
	d := failed[0].Dead
	if failed[0].Envelope.ID != id || d.Reason != "expired" || d.Status != 503 {
		t.Errorf("dead letter = %+v", d)
	}
	calls := s.callsFor(id)
	last := calls[len(calls)-1]
	if len(calls) < 2 || last.start.Sub(failed[0].Envelope.ReceivedAt) < opts.MaxAge-10*time.Millisecond {
		t.Errorf("%d attempts, the last %s after receipt; the last attempt belongs at max_age", len(calls), last.start.Sub(failed[0].Envelope.ReceivedAt))
	}
}

func TestDelayNoticeSentOnce(t *testing.T) {
	s := newFakeSender()
	var mu sync.Mutex
	fail := true
	s.setScript(func(env *envelope.Envelope, n int) error {
		mu.Lock()
		defer mu.Unlock()
		if fail && env.From != "" {
			return &graph.Error{Op: "token", Class: graph.Transient, Code: "AADSTS7000222"}
		}
		return nil
	})
	opts := testOptions(t)
	opts.NoticeTo = []string{"it@example.com"}
	opts.NoticeMailbox = envelope.Mailbox{Address: "alerts@example.com"}
	opts.DelayNoticeAfter = 100 * time.Millisecond
	q := startQueue(t, opts, s)
	id := deliver(t, q, "alerts@example.com", "slow")
	ids := s.waitDelivered(t, 1, 10*time.Second) // the delay notice
	if !strings.Contains(string(s.bodies[ids[0]]), "X-Graphrelay-Notice: delayed; id="+id) {
		t.Fatalf("first delivery is not the delay notice:\n%s", s.bodies[ids[0]])
	}
	time.Sleep(300 * time.Millisecond) // more failed attempts, no more notices
	mu.Lock()
	fail = false
	mu.Unlock()
	got := s.waitDelivered(t, 1, 10*time.Second)
	if got[0] != id {
		t.Errorf("second delivery %s is not the message; a second delay notice?", got[0])
	}
	select {
	case extra := <-s.delivered:
		t.Errorf("unexpected extra delivery %s", extra)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestQuotaRefusesWith452(t *testing.T) {
	s := newFakeSender()
	s.hold = make(chan struct{}) // nothing leaves
	opts := testOptions(t)
	opts.MaxMessages = 2
	q := startQueue(t, opts, s)
	deliver(t, q, "a@example.com", "1")
	deliver(t, q, "a@example.com", "2")
	err := q.Deliver(context.Background(), testEnv("a@example.com", "x@example.com"), strings.NewReader(testMessage("3")))
	if !isStorageFull(err) {
		t.Fatalf("third message: err = %v, want insufficient storage", err)
	}
	if ids, _ := q.spool.ids(areaQueue); len(ids) != 2 {
		t.Errorf("queue/ holds %d messages, want 2", len(ids))
	}
	close(s.hold)
	s.waitDelivered(t, 2, 5*time.Second)
	eventually(t, time.Minute, "quota released", func() bool {
		return q.Deliver(context.Background(), testEnv("a@example.com", "x@example.com"), strings.NewReader(testMessage("4"))) == nil
	})
}

func TestByteQuota(t *testing.T) {
	s := newFakeSender()
	s.hold = make(chan struct{})
	defer close(s.hold)
	opts := testOptions(t)
	opts.MaxBytes = 100_000
	q := startQueue(t, opts, s)
	big := testMessage("big") + strings.Repeat("y", 80_000)
	if err := q.Deliver(context.Background(), testEnv("a@example.com", "x@example.com"), strings.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	err := q.Deliver(context.Background(), testEnv("a@example.com", "x@example.com"), strings.NewReader(big))
	if !isStorageFull(err) {
		t.Fatalf("err = %v, want insufficient storage", err)
	}
	if left := listTree(filepath.Join(opts.Dir, "tmp")); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
}

func isStorageFull(err error) bool {
	var s interface{ InsufficientStorage() bool }
	return errors.As(err, &s) && s.InsufficientStorage()
}

func TestInjectedDiskFullAnswersStorageError(t *testing.T) {
	f := newFaultFS()
	opts := testOptions(t)
	opts.FS = f
	q := startQueue(t, opts, newFakeSender())
	f.setBudget(50)
	err := q.Deliver(context.Background(), testEnv("a@example.com", "x@example.com"), strings.NewReader(testMessage("full")))
	if !isStorageFull(err) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v", err)
	}
	if left := messageFiles(opts.Dir); len(left) != 0 {
		t.Errorf("partial files: %v", left)
	}
	// The quota accounting is back to zero: a small quota still admits.
	f.setBudget(-1)
	deliver(t, q, "a@example.com", "after")
}

// TestRestartResumes: messages waiting at Close are delivered by the next
// Queue on the same spool; an attempt a crash interrupted is reported.
func TestRestartResumes(t *testing.T) {
	s := newFakeSender()
	s.setScript(func(env *envelope.Envelope, n int) error {
		return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503}
	})
	opts := testOptions(t)
	opts.RetryInitial, opts.RetryMax = time.Hour, time.Hour
	q, err := Open(opts, s)
	if err != nil {
		t.Fatal(err)
	}
	q.Start()
	a := deliver(t, q, "alerts@example.com", "a")
	b := deliver(t, q, "alerts@example.com", "b")
	eventually(t, time.Minute, "both tried", func() bool { return len(s.callsFor(a)) == 1 && len(s.callsFor(b)) == 1 })
	eventually(t, time.Minute, "records written", func() bool {
		st, err := q.spool.read(areaQueue, b)
		return err == nil && len(st.rec.Attempts) == 1 && st.rec.Attempts[0].Outcome == OutcomeTransient
	})
	q.Close(context.Background())

	// Both are due now (an admin retry while the daemon was down) ...
	for _, id := range []string{a, b} {
		st, _ := q.spool.read(areaQueue, id)
		st.rec.NextTry = time.Now()
		q.spool.writeState(areaQueue, st.rec)
	}
	// ... and a kill -9 caught b's second attempt in flight.
	j, err := openJournal(filepath.Join(opts.Dir, "journal"), OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.begin(journalEntry{ID: b, N: 2, Start: time.Now(), NextTry: time.Now()}); err != nil {
		t.Fatal(err)
	}
	j.cur.f.Close() // as the kill does; Windows cannot delete a file still open
	os.WriteFile(filepath.Join(opts.Dir, "tmp", "junk"), []byte("x"), 0o600)

	s2 := newFakeSender()
	logs := &lockedBuffer{}
	opts.Log = newTextLogger(logs)
	startQueue(t, opts, s2)
	got := s2.waitDelivered(t, 2, 5*time.Second)
	if !(got[0] == a && got[1] == b || got[0] == b && got[1] == a) {
		t.Errorf("delivered %v, want %s and %s", got, a, b)
	}
	if !strings.Contains(logs.String(), "interrupted by a crash") || !strings.Contains(logs.String(), "id="+b+" attempt=2") {
		t.Errorf("the interrupted attempt is not logged:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, "tmp", "junk")); !os.IsNotExist(err) {
		t.Error("tmp/ leftovers survived the restart")
	}
}

// TestCloseLetsInFlightFinish: Close waits for a running attempt; past the
// deadline it cancels it and records it as interrupted, due at once.
func TestCloseLetsInFlightFinish(t *testing.T) {
	t.Run("finishes", func(t *testing.T) {
		s := newFakeSender()
		s.delay = 200 * time.Millisecond
		opts := testOptions(t)
		q, err := Open(opts, s)
		if err != nil {
			t.Fatal(err)
		}
		q.Start()
		deliver(t, q, "alerts@example.com", "in flight")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q.Close(ctx)
		if len(s.delivered) != 1 {
			t.Error("Close did not let the in-flight request finish")
		}
		if left := messageFiles(opts.Dir); len(left) != 0 {
			t.Errorf("left in spool: %v", left)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		s := newFakeSender()
		s.hold = make(chan struct{})
		opts := testOptions(t)
		q, err := Open(opts, s)
		if err != nil {
			t.Fatal(err)
		}
		q.Start()
		id := deliver(t, q, "alerts@example.com", "stuck")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		q.Close(ctx)
		st, err := q.spool.read(areaQueue, id)
		if err != nil {
			t.Fatal(err)
		}
		rec := st.rec
		last := rec.LastAttempt()
		if last.Outcome != OutcomeInterrupted || !last.Ambiguous || rec.NextTry.After(time.Now()) {
			t.Errorf("after a cancelled attempt: %+v, next %v", last, rec.NextTry)
		}
		if err := q.Deliver(context.Background(), testEnv("a@example.com", "x@example.com"), strings.NewReader("x")); err == nil {
			t.Error("a closed queue accepted a message")
		}
	})
}

func TestSecondDaemonIsRefused(t *testing.T) {
	opts := testOptions(t)
	startQueue(t, opts, newFakeSender())
	opts.LockWait = 100 * time.Millisecond
	if _, err := Open(opts, newFakeSender()); err == nil || !strings.Contains(err.Error(), "in use by another graphrelay") {
		t.Fatalf("second Open on one spool: %v", err)
	}
}

// recordingObserver collects what the queue reports for metrics.
type recordingObserver struct {
	mu         sync.Mutex
	delivered  map[string]int
	failed     []string
	dead       []string
	depth      map[string]int
	damaged    int
	throttled  int
	underFloor time.Duration
}

func (o *recordingObserver) Damaged(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.damaged = n
}

func (o *recordingObserver) Delivered(mailbox string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.delivered[mailbox]++
}

func (o *recordingObserver) DeliveryFailed(mailbox, code, class string, retry bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failed = append(o.failed, fmt.Sprintf("%s %s %s %v", mailbox, code, class, retry))
}

func (o *recordingObserver) DeadLettered(mailbox, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dead = append(o.dead, mailbox+" "+reason)
}

func (o *recordingObserver) QueueStats(mailbox string, depth int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.depth[mailbox] = depth
}

func (o *recordingObserver) Throttled(mailbox string, throttled bool, floorAdded time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if throttled {
		o.throttled++
	}
	o.underFloor += floorAdded
}

func TestObserverSeesDeliveriesAndFailures(t *testing.T) {
	s := newFakeSender()
	s.setScript(func(env *envelope.Envelope, n int) error {
		if env.Mailbox.Address == "bad@example.com" {
			return &graph.Error{Op: "sendMail", Class: graph.Permanent, Status: 404, Code: "ErrorInvalidUser"}
		}
		if n == 1 {
			return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503, Code: "ServiceUnavailable"}
		}
		return nil
	})
	obs := &recordingObserver{delivered: map[string]int{}, depth: map[string]int{}}
	opts := testOptions(t)
	opts.Observer = obs
	q := startQueue(t, opts, s)
	deliver(t, q, "good@example.com", "g")
	deliver(t, q, "bad@example.com", "b")
	s.waitDelivered(t, 1, 5*time.Second)
	eventually(t, time.Minute, "both reported", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.delivered["good@example.com"] == 1 && len(obs.failed) == 2
	})
	obs.mu.Lock()
	got := strings.Join(sortedCopy(obs.failed), "|")
	obs.mu.Unlock()
	if got != "bad@example.com ErrorInvalidUser permanent false|good@example.com ServiceUnavailable transient true" {
		t.Errorf("failures reported: %s", got)
	}
	obs.mu.Lock()
	if got := strings.Join(obs.dead, "|"); got != "bad@example.com permanent" {
		t.Errorf("dead letters reported: %q", got)
	}
	obs.mu.Unlock()
	// The delivery is counted before the message leaves the schedule (the
	// outcome's count and log line come first, queue.Fate), so the depth
	// reaches 0 a moment later: wait for that, rather than expect it.
	eventually(t, time.Minute, "a queue depth of 0 reported for good@example.com", func() bool {
		q.reportStats(time.Now())
		obs.mu.Lock()
		defer obs.mu.Unlock()
		d, ok := obs.depth["good@example.com"]
		return ok && d == 0
	})
}

// TestPreparedAttemptHonoursNewFloor: while the mailbox's only request
// slot is taken, one more message is prepared ahead (the gate's ahead
// allowance is the slot count) and the next one waits in its line,
// holding no worker; if the request comes back 429, both must wait for
// the Retry-After before their own requests.
func TestPreparedAttemptHonoursNewFloor(t *testing.T) {
	s := newFakeSender()
	release := make(chan struct{})
	var first string
	var mu sync.Mutex
	var throttledAt time.Time
	const ra = 400 * time.Millisecond
	s.setScript(func(env *envelope.Envelope, n int) error {
		mu.Lock()
		isFirst := env.ID == first && n == 1
		mu.Unlock()
		if !isFirst {
			return nil
		}
		<-release
		mu.Lock()
		throttledAt = time.Now()
		mu.Unlock()
		return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 429, RetryAfter: ra}
	})
	opts := testOptions(t)
	opts.RetryMax = 5 * time.Second
	opts.Mailboxes = []MailboxLimits{{Address: "one@example.com", MaxConcurrency: 1}}
	q := startQueue(t, opts, s)
	env := testEnv("one@example.com", "x@example.com")
	mu.Lock()
	first = env.ID
	mu.Unlock()
	if err := q.Deliver(context.Background(), env, strings.NewReader(testMessage("first"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "first request running", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.perID[first] == 1
	})
	second := deliver(t, q, "one@example.com", "second")
	third := deliver(t, q, "one@example.com", "third")
	time.Sleep(50 * time.Millisecond)
	if n := q.inflightOf("one@example.com"); n != 2 {
		close(release)
		t.Fatalf("%d attempts under way for a mailbox with one slot taken; want the request and one prepared ahead, the third waiting without a worker", n)
	}
	close(release)
	s.waitDelivered(t, 3, 5*time.Second)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range []string{second, third} {
		c := s.callsFor(id)
		if len(c) != 1 {
			t.Fatalf("%d requests for a waiting message, want 1", len(c))
		}
		if c[0].start.Before(throttledAt.Add(ra)) {
			t.Errorf("a waiting message's request started %s after the 429; Retry-After was %s", c[0].start.Sub(throttledAt), ra)
		}
	}
}

// A Retry-After longer than queue.retry_max is capped at it, and a
// mailbox held back by a floor beyond a message's queue.max_age gives the
// message up at its deadline, by the scheduler and without another
// attempt: a proxy's "retry after a day" outranks neither.
func TestRetryAfterCappedAndExpiryByScheduler(t *testing.T) {
	s := newFakeSender()
	s.setScript(func(env *envelope.Envelope, n int) error {
		return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503, Code: "ServiceUnavailable", RetryAfter: 24 * time.Hour}
	})
	opts := testOptions(t)
	opts.RetryMax = time.Hour
	opts.MaxAge = 600 * time.Millisecond
	q := startQueue(t, opts, s)
	id := deliver(t, q, "slow@example.com", "x")
	eventually(t, time.Minute, "the message in failed/", func() bool {
		st, err := q.spool.read(areaFailed, id)
		return err == nil && st.rec.Dead != nil
	})
	st, _ := q.spool.read(areaFailed, id)
	if st.rec.Dead.Reason != "expired" || st.rec.Dead.Code != "ServiceUnavailable" {
		t.Errorf("dead letter = %+v", st.rec.Dead)
	}
	if n := len(s.callsFor(id)); n != 1 {
		t.Errorf("%d requests; the floor must hold the second back until the message expires", n)
	}
	if ra := st.rec.Attempts[0].RetryAfter; ra != time.Hour.Seconds() {
		t.Errorf("recorded Retry-After %vs, want it capped at retry_max (3600s)", ra)
	}
}

// A message waiting for its next try after a failure keeps only what the
// scheduler needs in memory (its record is on disk), and its next attempt
// reads the record back: the attempts recorded so far are all there.
func TestWaitingMessagesParkTheirRecords(t *testing.T) {
	s := newFakeSender()
	s.setScript(func(env *envelope.Envelope, n int) error {
		if n < 3 {
			return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503, Code: "ServiceUnavailable"}
		}
		return nil
	})
	opts := testOptions(t)
	opts.RetryInitial, opts.RetryMax = 300*time.Millisecond, 300*time.Millisecond
	q := startQueue(t, opts, s)
	id := deliver(t, q, "parked@example.com", "p")
	eventually(t, time.Minute, "the message waiting after its first failure, its record parked", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		it := q.items[id]
		return it != nil && it.state == stateWaiting && it.rec == nil && it.size > 0 && !it.received.IsZero()
	})
	s.waitDelivered(t, 1, 10*time.Second)
	if n := len(s.callsFor(id)); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	// A new message for a mailbox whose only slot is taken, and whose
	// ahead allowance (one attempt prepared ahead) is used, waits parked
	// from the start: its record is the .msg file's envelope line.
	block := make(chan struct{})
	s.setScript(func(*envelope.Envelope, int) error { <-block; return nil })
	opts2 := testOptions(t)
	opts2.Mailboxes = []MailboxLimits{{Address: "one@example.com", MaxConcurrency: 1}}
	q2 := startQueue(t, opts2, s)
	deliver(t, q2, "one@example.com", "busy")
	deliver(t, q2, "one@example.com", "prepared ahead")
	waiting := deliver(t, q2, "one@example.com", "waits")
	q2.mu.Lock()
	parked := q2.items[waiting].rec == nil
	q2.mu.Unlock()
	close(block)
	if !parked {
		t.Error("a new message waiting for a slot kept its record in memory")
	}
	s.waitDelivered(t, 3, 10*time.Second)
}

// The time under the Retry-After floor is counted once however the floors
// overlap: the sum of what raise reports is the union of the intervals.
func TestFloorReportsTimeAdded(t *testing.T) {
	g := newGate(4, 0)
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		now, until int
		want       time.Duration
	}{
		{0, 10, 10 * time.Second}, // a fresh floor
		{2, 5, 0},                 // inside the current one
		{4, 15, 5 * time.Second},  // extends it
		{30, 31, time.Second},     // after it ended
	} {
		if got := g.raise(t0.Add(time.Duration(tc.until)*time.Second), t0.Add(time.Duration(tc.now)*time.Second)); got != tc.want {
			t.Errorf("floor until %d at %d added %v, want %v", tc.until, tc.now, got, tc.want)
		}
	}
}

// readingAdmitter is a preflight that reads the whole message, as
// graph/relay's does, and notes what it read.
type readingAdmitter struct {
	mu   sync.Mutex
	read map[string]string
}

func (a *readingAdmitter) Admit(env *envelope.Envelope, raw io.ReaderAt, size int64) error {
	b := make([]byte, size)
	if _, err := raw.ReadAt(b, 0); err != nil && err != io.EOF {
		return err
	}
	a.mu.Lock()
	a.read[env.ID] = string(b)
	a.mu.Unlock()
	return nil
}

// A new message that waits for a slot before its first attempt is sent
// with the record and bytes it was accepted with, kept in memory
// (freshCache), without reading its files back, although the preflight
// before 250 read it first: here the .msg file is hidden after the
// preflight, and the place of its .json record is taken by a directory,
// which any read of the record from disk would report as damage.
func TestWaitingNewMessageIsNotReadBack(t *testing.T) {
	s := newFakeSender()
	block := make(chan struct{})
	s.setScript(func(*envelope.Envelope, int) error { <-block; return nil })
	opts := testOptions(t)
	opts.Mailboxes = []MailboxLimits{{Address: "one@example.com", MaxConcurrency: 1}}
	adm := &readingAdmitter{read: map[string]string{}}
	opts.Admitter = adm
	q := startQueue(t, opts, s)
	deliver(t, q, "one@example.com", "busy")
	deliver(t, q, "one@example.com", "prepared ahead")
	second := deliver(t, q, "one@example.com", "waits")
	q.mu.Lock()
	parked := q.items[second].rec == nil
	q.mu.Unlock()
	if !parked {
		close(block)
		t.Fatal("the waiting message kept its record in the scheduler")
	}
	if err := os.Mkdir(q.spool.statePath(areaQueue, second), 0o700); err != nil {
		t.Fatal(err)
	}
	msgPath := q.spool.msgPath(areaQueue, second)
	if err := os.Rename(msgPath, msgPath+".hidden"); err != nil {
		t.Fatal(err)
	}
	// The sender reads the message during Send; it is put back before
	// the delivered message is removed.
	s.setScript(func(env *envelope.Envelope, _ int) error {
		if env.ID == second {
			if err := os.Rename(msgPath+".hidden", msgPath); err != nil {
				t.Error(err)
			}
		}
		return nil
	})
	close(block)
	s.waitDelivered(t, 3, 10*time.Second)
	adm.mu.Lock()
	admitted := adm.read[second]
	adm.mu.Unlock()
	if !strings.Contains(admitted, "Subject: waits") {
		t.Errorf("the preflight read %q", admitted)
	}
	s.mu.Lock()
	body, env := string(s.bodies[second]), s.envs[second]
	s.mu.Unlock()
	if !strings.Contains(body, "Subject: waits") || env.Mailbox.Address != "one@example.com" || env.Size != int64(len(body)) {
		t.Errorf("sent %q as %+v", body, env)
	}
}
