package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// gate is the cluster-wide per-mailbox gate: request leases in
// GRAPHRELAY_LEASES, and the Retry-After floor and pacing in
// GRAPHRELAY_MAILBOXES, which this relay watches so that a floor set by
// another relay holds back its requests too.
type gate struct {
	st    *store
	opts  Options
	owner []byte

	mu      sync.Mutex
	state   map[string]boxState      // by mailbox token, from the watcher
	changed map[string]chan struct{} // closed when a mailbox's leases or state change
	// idle holds leases this relay released a moment ago, by mailbox
	// token: the next request of this relay for the mailbox reuses one
	// without two replicated writes (delete, create), and an idle lease
	// is deleted after idleTTL so the other relays get their turn.
	idle map[string][]*lease
	// held maps a lease key to when this relay last saw it exist: written
	// (created or renewed, from the watcher) or refused as existing. A
	// waiter skips such a key for heldTrust instead of asking the cluster
	// again; a delete clears it at once.
	held map[string]time.Time
	// deletes counts the lease deletions the watcher has seen, so that a
	// refusal that crossed a deletion does not mark a free key held.
	deletes uint64
	closed  bool
}

const (
	// idleTTL is how long a released lease waits for this relay's next
	// request before it is given back to the cluster.
	idleTTL = 20 * time.Millisecond
	// maxReuse bounds how many requests in a row one lease serves on one
	// relay, so that a busy relay does not keep a slot from the others.
	maxReuse = 16
)

// heldTrust is how long a lease key seen to exist is taken as held
// without asking the cluster. Releases come as delete events, which clear
// it at once, so this only bounds how late a waiter notices a lease that
// expired (its relay died) or a delete event that a reconnect lost. It
// saves the waiters' polls of the cluster: with three relays of four
// fetchers on a mailbox of four slots, eight waiters each asking for four
// keys every PollInterval cost the NATS servers more CPU than the
// messages did.
func (g *gate) heldTrust() time.Duration { return 4 * g.opts.PollInterval }

// boxState is a mailbox's shared schedule.
type boxState struct {
	// NotBefore is the Retry-After floor: no request for the mailbox
	// starts before it, on any relay.
	NotBefore time.Time `json:"not_before,omitzero"`
	// LastStart is the latest request start claimed for pacing.
	LastStart time.Time `json:"last_start,omitzero"`
}

func newGate(st *store, o Options) *gate {
	host, _ := os.Hostname()
	return &gate{st: st, opts: o, owner: fmt.Appendf(nil, "%s %s pid %d", o.Name, host, os.Getpid()),
		state: map[string]boxState{}, changed: map[string]chan struct{}{}, idle: map[string][]*lease{},
		held: map[string]time.Time{}}
}

// watch follows both buckets until ctx ends.
func (g *gate) watch(ctx context.Context) error {
	lw, err := g.st.leases.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("watch %s: %w", bucketLeases, err)
	}
	bw, err := g.st.boxes.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", bucketBoxes, err)
	}
	// A released lease wakes this relay's waiters for the mailbox. A
	// lease that expires (its relay died) leaves no event; waiters find
	// it free once heldTrust has passed.
	go func() {
		for e := range lw.Updates() {
			if e == nil {
				continue
			}
			token, _, _ := strings.Cut(e.Key(), ".")
			g.mu.Lock()
			if e.Operation() == jetstream.KeyValuePut {
				g.held[e.Key()] = time.Now()
			} else {
				delete(g.held, e.Key())
				g.deletes++
				g.signalLocked(token)
			}
			g.mu.Unlock()
		}
	}()
	go func() {
		for e := range bw.Updates() {
			if e == nil {
				continue
			}
			var s boxState
			if e.Operation() == jetstream.KeyValuePut {
				json.Unmarshal(e.Value(), &s)
			}
			g.mu.Lock()
			g.state[e.Key()] = s
			g.signalLocked(e.Key())
			g.mu.Unlock()
		}
	}()
	return nil
}

// waitChan returns a channel closed at the mailbox's next change.
func (g *gate) waitChan(token string) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := g.changed[token]
	if ch == nil {
		ch = make(chan struct{})
		g.changed[token] = ch
	}
	return ch
}

func (g *gate) signalLocked(token string) {
	if ch := g.changed[token]; ch != nil {
		close(ch)
		delete(g.changed, token)
	}
}

func (g *gate) floor(token string) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state[token].NotBefore
}

// lease is one of a mailbox's request slots, held by this relay.
type lease struct {
	key  string
	rev  uint64 // owned by renew until done is closed
	stop chan struct{}
	done chan struct{}
	uses int
	idle *time.Timer // set while the lease is idle
}

// acquire waits for the mailbox's Retry-After floor, then for one of its
// request slots, then for its pacing, and returns the slot. The floor is
// checked again after the slot is taken, because a 429 on any relay may
// have raised it meanwhile.
func (g *gate) acquire(ctx context.Context, b *box) (*lease, error) {
	var l *lease
	for l == nil {
		if err := g.waitFloor(ctx, b.token); err != nil {
			return nil, err
		}
		ch := g.waitChan(b.token)
		if l = g.takeIdle(b.token); l != nil {
			break
		}
		first := rand.IntN(b.limit)
		wait := g.heldTrust()
		for i := range b.limit {
			key := fmt.Sprintf("%s.%d", b.token, (first+i)%b.limit)
			if left := g.heldFor(key); left > 0 {
				wait = min(wait, left)
				continue
			}
			wait = min(wait, g.opts.PollInterval)
			seen := g.deletesSeen()
			rev, err := g.st.leases.Create(ctx, key, g.owner)
			if err == nil {
				l = &lease{key: key, rev: rev, stop: make(chan struct{}), done: make(chan struct{})}
				break
			}
			if !errors.Is(err, jetstream.ErrKeyExists) {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				break // the cluster is unavailable; wait and try again
			}
			g.sawHeld(key, seen)
		}
		if l != nil {
			break
		}
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
	if l.uses == 0 {
		go g.renew(l)
	}
	l.uses++
	if b.interval > 0 {
		if err := g.pace(ctx, b); err != nil {
			g.release(b.token, l)
			return nil, err
		}
	}
	if err := g.waitFloor(ctx, b.token); err != nil {
		g.release(b.token, l)
		return nil, err
	}
	return l, nil
}

// heldFor returns how much longer key is taken as held, or 0 when it may
// be free.
func (g *gate) heldFor(key string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.held[key]; ok {
		return max(0, g.heldTrust()-time.Since(t))
	}
	return 0
}

func (g *gate) deletesSeen() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.deletes
}

// sawHeld notes that key was found to exist, unless a deletion was seen
// since seen: the key may be free again already.
func (g *gate) sawHeld(key string, seen uint64) {
	g.mu.Lock()
	if g.deletes == seen {
		g.held[key] = time.Now()
	}
	g.mu.Unlock()
}

// waitFloor waits until the mailbox's Retry-After floor has passed.
func (g *gate) waitFloor(ctx context.Context, token string) error {
	for {
		ch := g.waitChan(token)
		wait := time.Until(g.floor(token))
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case <-ch:
			t.Stop()
		}
	}
}

// pace claims the mailbox's next start time, one interval after the last
// claimed by any relay, and waits for it.
func (g *gate) pace(ctx context.Context, b *box) error {
	var start time.Time
	err := g.update(ctx, b.token, func(s *boxState) bool {
		start = time.Now()
		if p := s.LastStart.Add(b.interval); p.After(start) {
			start = p
		}
		if s.NotBefore.After(start) {
			start = s.NotBefore
		}
		s.LastStart = start
		return true
	})
	if err != nil {
		return err
	}
	t := time.NewTimer(time.Until(start))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// raiseFloor sets the mailbox's Retry-After floor to at least t, for
// every relay.
// It returns how much later the floor now ends than it did, for metrics.
func (g *gate) raiseFloor(ctx context.Context, token string, t time.Time) (time.Duration, error) {
	var added time.Duration
	g.mu.Lock()
	// Hold back this relay at once, before the cluster confirms.
	if s := g.state[token]; t.After(s.NotBefore) {
		added = t.Sub(max64(s.NotBefore, time.Now()))
		s.NotBefore = t
		g.state[token] = s
	}
	g.mu.Unlock()
	return max(added, 0), g.update(ctx, token, func(s *boxState) bool {
		if !t.After(s.NotBefore) {
			return false
		}
		s.NotBefore = t
		return true
	})
}

// update changes a mailbox's state with compare-and-set, retrying when
// another relay changed it first.
func (g *gate) update(ctx context.Context, token string, change func(*boxState) bool) error {
	for try := 0; ; try++ {
		var s boxState
		var rev uint64
		e, err := g.st.boxes.Get(ctx, token)
		switch {
		case err == nil:
			json.Unmarshal(e.Value(), &s)
			rev = e.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return err
		}
		if !change(&s) {
			return nil
		}
		if rev == 0 {
			_, err = g.st.boxes.Create(ctx, token, encode(s))
		} else {
			_, err = g.st.boxes.Update(ctx, token, encode(s), rev)
		}
		if err == nil || try == 20 || !isConflict(err) {
			return err
		}
	}
}

func isConflict(err error) bool {
	var api *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		(errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)) ||
		strings.Contains(err.Error(), "wrong last sequence")
}

// renew keeps the lease alive until it is released; the bucket's TTL
// (queue.jetstream.lease) removes the lease of a relay that died.
func (g *gate) renew(l *lease) {
	defer close(l.done)
	t := time.NewTicker(g.opts.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), g.opts.Lease/3)
			rev, err := g.st.leases.Update(ctx, l.key, g.owner, l.rev)
			cancel()
			if err != nil {
				g.opts.Log.Warn("cannot renew a mailbox request lease; another relay may take the slot after it expires", "lease", l.key, "err", err)
				continue
			}
			l.rev = rev
		}
	}
}

// release gives the slot back: to this relay's next request for the
// mailbox if one comes within idleTTL, else to the cluster.
func (g *gate) release(token string, l *lease) {
	g.mu.Lock()
	if l.uses < maxReuse && !g.closed {
		g.idle[token] = append(g.idle[token], l)
		l.idle = time.AfterFunc(idleTTL, func() {
			if g.removeIdle(token, l) {
				g.drop(token, l)
			}
		})
		g.signalLocked(token)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	g.drop(token, l)
}

// takeIdle returns an idle lease of the mailbox, or nil.
func (g *gate) takeIdle(token string) *lease {
	g.mu.Lock()
	defer g.mu.Unlock()
	ls := g.idle[token]
	if len(ls) == 0 {
		return nil
	}
	l := ls[len(ls)-1]
	g.idle[token] = ls[:len(ls)-1]
	// If its timer has fired meanwhile, removeIdle finds it gone and
	// leaves it to us: the lease is still held and renewed.
	l.idle.Stop()
	return l
}

// removeIdle takes l out of the idle list; false means it was reused.
func (g *gate) removeIdle(token string, l *lease) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	ls := g.idle[token]
	for i, x := range ls {
		if x == l {
			g.idle[token] = append(ls[:i], ls[i+1:]...)
			return true
		}
	}
	return false
}

// drop deletes the lease, so another relay may take the slot at once.
func (g *gate) drop(token string, l *lease) {
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.st.leases.Delete(ctx, l.key, jetstream.LastRevision(l.rev)); err != nil {
		g.opts.Log.Warn("cannot release a mailbox request lease; it expires after queue.jetstream.lease", "lease", l.key, "err", err)
	}
	g.mu.Lock()
	g.signalLocked(token)
	g.mu.Unlock()
}

// close gives every idle lease back, so that a relay that stops does not
// keep slots from the others until the leases expire.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	var drops [][2]any
	for token, ls := range g.idle {
		for _, l := range ls {
			l.idle.Stop()
			drops = append(drops, [2]any{token, l})
		}
		delete(g.idle, token)
	}
	g.mu.Unlock()
	for _, d := range drops {
		g.drop(d[0].(string), d[1].(*lease))
	}
}

func max64(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
