package auth

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// guessAll starts n guesses for ip at once; check runs for each guess that
// Begin lets through and says whether its password was right. It returns
// how many were refused as locked out.
func guessAll(th *Throttle, ip string, n int, check func() bool) (refused int) {
	var wg sync.WaitGroup
	var refusedN atomic.Int64
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			done, left := th.Begin(context.Background(), ip)
			if done == nil {
				if left <= 0 {
					panic("Begin refused without a lockout and without a cancelled context")
				}
				refusedN.Add(1)
				return
			}
			done(true, check())
		}()
	}
	close(start)
	wg.Wait()
	return int(refusedN.Load())
}

// TestConcurrentGuessesBounded: 20 simultaneous wrong passwords from one
// client get at most max_failures checks; the rest meet the lockout.
func TestConcurrentGuessesBounded(t *testing.T) {
	for round := range 20 {
		th := NewThrottle(authCfg(5, 5*time.Minute, 15*time.Minute), nil)
		var checks atomic.Int64
		refused := guessAll(th, "192.0.2.7", 20, func() bool {
			checks.Add(1)
			time.Sleep(time.Millisecond) // widen the race: guesses overlap
			return false
		})
		if n := checks.Load(); n > 5 {
			t.Fatalf("round %d: %d passwords checked, want at most max_failures (5)", round, n)
		}
		if n := checks.Load(); int(n)+refused != 20 {
			t.Fatalf("round %d: %d checked + %d refused, want 20", round, n, refused)
		}
		if b, _ := th.Blocked("192.0.2.7"); !b {
			t.Fatalf("round %d: not locked out after the burst", round)
		}
	}
}

// TestConcurrentGoodLoginsAllPass: a client with the right password is
// delayed by the reservation, never refused.
func TestConcurrentGoodLoginsAllPass(t *testing.T) {
	th := NewThrottle(authCfg(5, 5*time.Minute, 15*time.Minute), nil)
	var inFlight, most atomic.Int64
	refused := guessAll(th, "192.0.2.8", 40, func() bool {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(time.Millisecond)
		inFlight.Add(-1)
		return true
	})
	if refused != 0 {
		t.Fatalf("%d good logins refused", refused)
	}
	if m := most.Load(); m > 5 {
		t.Errorf("%d checks in flight at once, want at most 5", m)
	}
	if b, _ := th.Blocked("192.0.2.8"); b {
		t.Error("good logins locked the client out")
	}
}

// TestGuessOutcomes: failures reserved through Begin count like Failure,
// a success clears them, and a waiting guess gives up with its context.
func TestGuessOutcomes(t *testing.T) {
	c := newClock()
	th := NewThrottle(authCfg(3, 5*time.Minute, 15*time.Minute), c.now)
	ip := "2001:db8::1"
	begin := func() func(bool, bool) bool {
		t.Helper()
		done, left := th.Begin(context.Background(), ip)
		if done == nil {
			t.Fatalf("Begin refused (left %v)", left)
		}
		return done
	}
	begin()(true, false)
	begin()(true, false)
	begin()(true, true) // clears the two failures
	d1, d2 := begin(), begin()
	d3 := begin()
	// Three guesses in flight use up max_failures: a fourth waits.
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan bool)
	go func() {
		done, left := th.Begin(ctx, "2001:db8::2") // the same /64
		waited <- done == nil && left == 0
	}()
	select {
	case <-waited:
		t.Fatal("a fourth guess was not held while three were in flight")
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if !<-waited {
		t.Fatal("a waiting guess did not give up with its context")
	}
	if d1(true, false) {
		t.Fatal("lockout after one failure")
	}
	if d2(false, false) {
		t.Fatal("an unchecked guess reported the lockout")
	}
	if begin()(true, false) {
		t.Fatal("lockout after two failures and one unchecked guess")
	}
	if !d3(true, false) {
		t.Fatal("the third failure did not trigger the lockout")
	}
	if d3(true, false) {
		t.Error("a second report of one guess counted")
	}
	if done, left := th.Begin(context.Background(), ip); done != nil || left != 15*time.Minute {
		t.Fatalf("Begin during the lockout = %v, %v", done != nil, left)
	}
	c.advance(15 * time.Minute)
	begin()(true, true)
	if len(th.clients) != 0 {
		t.Errorf("%d clients remembered after a clean success", len(th.clients))
	}
}
