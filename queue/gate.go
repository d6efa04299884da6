package queue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// gate is one mailbox's share of Graph's budget, the same in queue and
// direct mode. Graph allows 4 concurrent requests per app and mailbox and
// Exchange about 30 messages a minute, and real Exchange prolongs the
// throttling of a mailbox that keeps exceeding them, so the gate holds:
//
//   - slots: at most limit requests in flight (mailboxes[].max_concurrency,
//     4 by default); a slot is taken before the request is prepared and
//     given back as soon as Graph has answered. Without pacing, up to
//     limit more attempts may be prepared (their journal line written and
//     fsynced) while every request slot is busy; each one waits in leave
//     until a request ends, so the next request leaves as soon as a slot
//     frees instead of after its own journal fsync;
//   - pacing (messages_per_minute): the gap is measured from the moment a
//     request leaves, not from when an attempt was scheduled, and no second
//     request is let through while one is still on its way out;
//   - the Retry-After floor: no request for the mailbox leaves before it.
//
// The queue's dispatcher asks readyAt and takes a slot only when one is
// free now, so a throttled mailbox holds no worker; direct mode waits in
// acquire for a bounded time.
type gate struct {
	limit    int
	interval time.Duration
	// ahead is how many attempts take may let prepare beyond limit: limit
	// without pacing, none with it (pacing lets only one request be on its
	// way out at a time anyway).
	ahead int

	mu      sync.Mutex
	held    int // slots taken: prepared or in flight
	leaving int // slots taken whose request has not left yet
	// aheadLeaving is how many of the leaving ones were taken beyond limit
	// (prepared ahead) and have not left. Which attempt leaves first is a
	// race, so they are counted, not named: the last ones to leave are
	// the ahead ones, and once dispatching stops only the others may go.
	aheadLeaving int
	lastSent     time.Time // when the last request left, for pacing
	notBefore    time.Time // the Retry-After floor
	// changed is closed and replaced whenever a slot frees, a request
	// leaves or the floor moves, to wake acquire's waiters.
	changed chan struct{}
}

func newGate(limit int, interval time.Duration) *gate {
	if limit <= 0 {
		limit = 4
	}
	g := &gate{limit: limit, interval: interval, changed: make(chan struct{})}
	if interval <= 0 {
		g.ahead = limit
	}
	return g
}

// readyAt returns when a slot could be taken, and false when that depends
// on a request ending or leaving rather than on time. With ahead, it
// counts the slots for attempts prepared ahead too.
func (g *gate) readyAt(ahead bool) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.readyAtLocked(g.extra(ahead))
}

func (g *gate) extra(ahead bool) int {
	if ahead {
		return g.ahead
	}
	return 0
}

func (g *gate) readyAtLocked(extra int) (time.Time, bool) {
	if g.held >= g.limit+extra {
		return time.Time{}, false
	}
	t := g.notBefore
	if g.interval > 0 {
		if g.leaving > 0 {
			return time.Time{}, false
		}
		if !g.lastSent.IsZero() {
			if p := g.lastSent.Add(g.interval); p.After(t) {
				t = p
			}
		}
	}
	return t, true
}

// free returns how many request slots are not taken: the workers this
// mailbox may still want without preparing ahead.
func (g *gate) free() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(g.limit-g.held, 0)
}

// take takes a slot if one is free at now; with ahead, one for an attempt
// prepared ahead, whose request waits in leave for a free request slot.
func (g *gate) take(now time.Time, ahead bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.readyAtLocked(g.extra(ahead))
	if !ok || at.After(now) {
		return false
	}
	if g.held >= g.limit {
		g.aheadLeaving++
	}
	g.held++
	g.leaving++
	return true
}

// leftLocked counts out one attempt that leaves or gives its slot back:
// the ahead ones are the last to leave.
func (g *gate) leftLocked() {
	g.leaving--
	g.aheadLeaving = min(g.aheadLeaving, g.leaving)
}

// leave is called with a slot held, right before the request goes out.
// While limit requests are out (this attempt was prepared ahead) it waits
// for one to end. It returns how long the request must still wait when a
// Retry-After floor was raised since the slot was taken; the caller then
// gives the slot back with cancel and tries later, instead of waiting with
// a worker. Once halt is closed (dispatching stopped) only as many
// attempts leave as were started with a free request slot, which were in
// flight when the daemon began to stop; the rest were prepared ahead and
// have sent nothing, so leave returns errHalted for them and they are not
// made, like the attempts that were never started. On an error (ctx
// ended too) the caller cancels.
func (g *gate) leave(ctx context.Context, halt <-chan struct{}) (time.Duration, error) {
	for {
		halted := false
		select {
		case <-halt:
			halted = true
		default:
		}
		g.mu.Lock()
		if halted && g.leaving-g.aheadLeaving <= 0 {
			g.mu.Unlock()
			return 0, errHalted
		}
		now := time.Now()
		if g.notBefore.After(now) {
			wait := g.notBefore.Sub(now)
			g.mu.Unlock()
			return wait, nil
		}
		// held-leaving is the requests out now; this attempt is among the
		// leaving ones.
		if g.held-g.leaving < g.limit {
			g.leftLocked()
			g.lastSent = now
			g.signalLocked()
			g.mu.Unlock()
			return 0, nil
		}
		ch := g.changed
		g.mu.Unlock()
		wake := halt
		if halted {
			wake = nil // seen: wait for the gate or ctx from now on
		}
		select {
		case <-ch:
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// errHalted ends an attempt prepared ahead whose request had not left
// when the daemon stopped dispatching.
var errHalted = errors.New("dispatch stopped before the prepared request could leave")

// cancel gives back a slot whose request never left.
func (g *gate) cancel() {
	g.mu.Lock()
	g.held--
	g.leftLocked()
	g.signalLocked()
	g.mu.Unlock()
}

// release gives back a slot once Graph has answered; retryAfter (already
// capped by the outcome) raises the floor for the whole mailbox.
func (g *gate) release(now time.Time, retryAfter time.Duration) {
	g.mu.Lock()
	g.held--
	if retryAfter > 0 {
		if t := now.Add(retryAfter); t.After(g.notBefore) {
			g.notBefore = t
		}
	}
	g.signalLocked()
	g.mu.Unlock()
}

// raise raises the Retry-After floor to t (a floor never moves back) and
// returns by how much the time under the floor grew, counted from now, for
// the metric of time spent throttled.
func (g *gate) raise(t, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !t.After(g.notBefore) {
		return 0
	}
	from := g.notBefore
	if now.After(from) {
		from = now
	}
	g.notBefore = t
	g.signalLocked()
	if t.After(from) {
		return t.Sub(from)
	}
	return 0
}

// floor returns the Retry-After floor.
func (g *gate) floor() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.notBefore
}

func (g *gate) signalLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// acquire waits until a request may leave, at most until deadline, and
// then takes a slot and marks the request as leaving at once (direct mode
// has nothing to prepare). When the deadline comes first it returns false
// and the earliest time a retry could succeed, for the client's 451.
func (g *gate) acquire(ctx context.Context, deadline time.Time) (bool, time.Time) {
	for {
		now := time.Now()
		g.mu.Lock()
		at, ok := g.readyAtLocked(0)
		if ok && !at.After(now) {
			g.held++
			g.lastSent = now
			g.mu.Unlock()
			return true, time.Time{}
		}
		ch := g.changed
		g.mu.Unlock()
		if !ok {
			at = now
		}
		if !now.Before(deadline) {
			return false, at
		}
		wake := deadline
		if ok && at.Before(wake) {
			wake = at
		}
		t := time.NewTimer(wake.Sub(now))
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, at
		}
		t.Stop()
	}
}

// MailboxLimits are one mailbox's delivery limits.
type MailboxLimits struct {
	Address           string
	MaxConcurrency    int
	MessagesPerMinute int
}

// limitsFor returns the gate settings of a mailbox: its configured limits,
// or def requests in flight and no pacing.
func limitsFor(key string, limits []MailboxLimits, def int) (int, time.Duration) {
	limit, interval := def, time.Duration(0)
	for _, l := range limits {
		if mailboxKey(l.Address, "") == key {
			if l.MaxConcurrency > 0 {
				limit = l.MaxConcurrency
			}
			if l.MessagesPerMinute > 0 {
				interval = time.Minute / time.Duration(l.MessagesPerMinute)
			}
		}
	}
	return limit, interval
}

// mailboxKey is how messages are grouped: Graph counts concurrency per
// mailbox, and one mailbox is one configured address.
func mailboxKey(address, id string) string {
	if address != "" {
		return strings.ToLower(address)
	}
	return strings.ToLower(id)
}
