package auth

import (
	"context"
	"time"
)

// Begin reserves one password guess for ip before the password is
// checked, and returns the function that reports its outcome:
// done(true, true) after a good password, done(true, false) after a wrong
// one, which returns true when that failure triggered the lockout, and
// done(false, _) when the password was not checked after all, which frees
// the reservation without counting anything. Begin returns a nil done when ip
// is locked out (left is the time remaining) or when ctx ends first (left
// is 0).
//
// Counting after the check, as Failure alone does, lets a client that
// opens many connections at once have all its guesses checked before the
// first failure is counted. Begin counts guesses in flight as failures
// until they are known, and makes any guess beyond max_failures wait for
// one in flight to end: a success frees its place, a failure uses it up,
// and the lockout ends the wait. So at most max_failures guesses are
// checked per window whatever the concurrency, and a client with the
// right password is only ever delayed, never refused, by its own
// concurrent logins.
func (t *Throttle) Begin(ctx context.Context, ip string) (done func(checked, ok bool) bool, left time.Duration) {
	key := clientKey(ip)
	for {
		now := t.now()
		t.mu.Lock()
		c := t.entry(key, now)
		if now.Before(c.until) {
			t.mu.Unlock()
			return nil, c.until.Sub(now)
		}
		t.refresh(c, now)
		if c.failures+c.pending < t.maxFailures {
			c.pending++
			t.mu.Unlock()
			return t.outcome(key), 0
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		changed := c.changed
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, 0
		case <-changed:
		}
	}
}

// outcome returns the done function for a guess reserved for key. Calls
// after the first do nothing, so a deferred safety call is harmless.
func (t *Throttle) outcome(key string) func(checked, ok bool) bool {
	reported := false
	return func(checked, ok bool) bool {
		now := t.now()
		t.mu.Lock()
		defer t.mu.Unlock()
		if reported {
			return false
		}
		reported = true
		// The entry may have been evicted by a scan from very many
		// addresses; the failure is then counted in a fresh one.
		c := t.entry(key, now)
		if c.pending > 0 {
			c.pending--
		}
		if !checked {
			c.notify()
			return false
		}
		if !ok {
			return t.failLocked(c, now)
		}
		if now.Before(c.until) {
			// A good password does not lift a lockout in force (Success).
			c.notify()
			return false
		}
		if c.pending == 0 {
			t.remove(t.clients[key])
			return false
		}
		c.first, c.failures, c.until = now, 0, time.Time{}
		c.notify()
		return false
	}
}
