package auth

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func authCfg(maxF int, w, l time.Duration) config.Auth {
	return config.Auth{MaxFailures: maxF, Window: config.Duration(w), Lockout: config.Duration(l)}
}

// fail records n failures and returns how many of them reported the lockout.
func fail(th *Throttle, ip string, n int) int {
	triggered := 0
	for range n {
		if th.Failure(ip) {
			triggered++
		}
	}
	return triggered
}

func TestLockoutAfterMaxFailures(t *testing.T) {
	c := newClock()
	th := NewThrottle(authCfg(5, 5*time.Minute, 15*time.Minute), c.now)
	for i := 1; i <= 4; i++ {
		if th.Failure("192.0.2.1") {
			t.Fatalf("failure %d triggered the lockout", i)
		}
		c.advance(time.Minute) // 4 failures over 4 minutes: still in the window
	}
	if b, _ := th.Blocked("192.0.2.1"); b {
		t.Fatal("blocked before max_failures")
	}
	if !th.Failure("192.0.2.1") {
		t.Fatal("the 5th failure did not trigger the lockout")
	}
	b, left := th.Blocked("192.0.2.1")
	if !b || left != 15*time.Minute {
		t.Fatalf("Blocked = %v, %v; want true, 15m", b, left)
	}
	if th.Failure("192.0.2.1") {
		t.Error("a failure during the lockout reported it again")
	}
	c.advance(10 * time.Minute)
	if b, left := th.Blocked("192.0.2.1"); !b || left != 5*time.Minute {
		t.Errorf("a failure during the lockout extended it: %v, %v", b, left)
	}
	if b, _ := th.Blocked("192.0.2.2"); b {
		t.Error("another IP is blocked")
	}
}

func TestWindowExpiry(t *testing.T) {
	c := newClock()
	th := NewThrottle(authCfg(3, 5*time.Minute, 15*time.Minute), c.now)
	if fail(th, "192.0.2.1", 2) != 0 {
		t.Fatal("locked out early")
	}
	c.advance(5 * time.Minute) // the window that began at the first failure ends
	if fail(th, "192.0.2.1", 2) != 0 {
		t.Fatal("failures from an expired window still counted")
	}
	if b, _ := th.Blocked("192.0.2.1"); b {
		t.Fatal("blocked")
	}
	if fail(th, "192.0.2.1", 1) != 1 {
		t.Fatal("3 failures within the new window did not lock out")
	}
}

func TestLockoutExpiry(t *testing.T) {
	c := newClock()
	th := NewThrottle(authCfg(2, time.Minute, 15*time.Minute), c.now)
	if fail(th, "192.0.2.1", 2) != 1 {
		t.Fatal("no lockout")
	}
	c.advance(15*time.Minute - time.Second)
	if b, left := th.Blocked("192.0.2.1"); !b || left != time.Second {
		t.Fatalf("Blocked = %v, %v; want true, 1s", b, left)
	}
	c.advance(time.Second)
	if b, left := th.Blocked("192.0.2.1"); b || left != 0 {
		t.Fatalf("still blocked after the lockout: %v, %v", b, left)
	}
	// After a lockout the count starts from zero.
	if fail(th, "192.0.2.1", 1) != 0 {
		t.Fatal("one failure after the lockout locked out again")
	}
	if fail(th, "192.0.2.1", 1) != 1 {
		t.Fatal("a second lockout was not reported")
	}
}

func TestSuccessResets(t *testing.T) {
	c := newClock()
	th := NewThrottle(authCfg(3, 5*time.Minute, 15*time.Minute), c.now)
	fail(th, "192.0.2.1", 2)
	th.Success("192.0.2.1")
	if fail(th, "192.0.2.1", 2) != 0 {
		t.Fatal("Success did not clear the count")
	}
	if fail(th, "192.0.2.1", 1) != 1 {
		t.Fatal("no lockout after 3 failures")
	}
	// A success (on a connection that was already past the check) does not
	// lift a lockout in force.
	th.Success("192.0.2.1")
	if b, _ := th.Blocked("192.0.2.1"); !b {
		t.Fatal("Success lifted the lockout")
	}
	th.Success("198.51.100.9") // unknown IP: no effect, no panic
}

func TestClientKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:2525", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::7]:587", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not an ip", "not an ip"},
	}
	for _, tt := range tests {
		if got := clientKey(tt.in); got != tt.want {
			t.Errorf("clientKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Two addresses in one /64 share a count, so hopping within the
	// prefix does not help.
	th := NewThrottle(authCfg(2, time.Minute, time.Minute), nil)
	th.Failure("2001:db8::1")
	if !th.Failure("2001:db8::2") {
		t.Error("failures from one /64 were not counted together")
	}
	if b, _ := th.Blocked("2001:db8::ffff"); !b {
		t.Error("another address in the /64 is not blocked")
	}
}

func TestZeroConfigUsesDefaults(t *testing.T) {
	th := NewThrottle(config.Auth{}, nil)
	if th.maxFailures != 5 || th.window != 5*time.Minute || th.lockout != 15*time.Minute {
		t.Fatalf("got %d, %v, %v; want 5, 5m, 15m", th.maxFailures, th.window, th.lockout)
	}
	if fail(th, "192.0.2.1", 4) != 0 || fail(th, "192.0.2.1", 1) != 1 {
		t.Fatal("a zero config does not lock out after 5 failures")
	}
}

// A scan from many addresses must not grow the table past MaxTracked,
// and the newest entries must survive eviction.
func TestBoundedMemory(t *testing.T) {
	c := newClock()
	th := NewThrottle(authCfg(5, 5*time.Minute, 15*time.Minute), c.now)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 100_000
	for i := range n {
		th.Failure(fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff))
		if i%1000 == 0 {
			c.advance(time.Millisecond) // all within one window: nothing expires
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	th.mu.Lock()
	tracked, listed := len(th.clients), th.order.Len()
	th.mu.Unlock()
	if tracked > MaxTracked || listed != tracked {
		t.Fatalf("tracking %d clients (list %d), cap %d", tracked, listed, MaxTracked)
	}
	t.Logf("%d distinct IPs: %d tracked, heap %+d KiB (≈%d B per client)", n, tracked,
		(int64(after.HeapAlloc)-int64(before.HeapAlloc))/1024, (int64(after.HeapAlloc)-int64(before.HeapAlloc))/int64(tracked))

	// The most recent client is still counted; the oldest was evicted.
	last := fmt.Sprintf("10.%d.%d.%d", (n-1)>>16&0xff, (n-1)>>8&0xff, (n-1)&0xff)
	if fail(th, last, 4) != 1 {
		t.Error("the newest client lost its count")
	}
	th.mu.Lock()
	_, oldest := th.clients["10.0.0.0"]
	th.mu.Unlock()
	if oldest {
		t.Error("the oldest client was not evicted")
	}
}

// Expired entries are dropped before live ones when the table is full.
func TestEvictsExpiredFirst(t *testing.T) {
	c := newClock()
	th := NewThrottle(authCfg(3, time.Minute, time.Hour), c.now)
	th.cap = 3
	fail(th, "192.0.2.1", 3) // locked out for an hour
	fail(th, "192.0.2.2", 1)
	c.advance(2 * time.Minute) // .2's window is over
	th.Failure("192.0.2.3")
	th.Failure("192.0.2.4") // full: .2 is expired and goes first
	if b, _ := th.Blocked("192.0.2.1"); !b {
		t.Fatal("a live lockout was evicted while an expired entry was kept")
	}
	th.mu.Lock()
	_, has2 := th.clients["192.0.2.2"]
	n := len(th.clients)
	th.mu.Unlock()
	if has2 || n != 3 {
		t.Fatalf("expired entry kept: %v, %d tracked", has2, n)
	}
}

func TestConcurrentUse(t *testing.T) {
	const goroutines, rounds = 8, 200
	th := NewThrottle(authCfg(goroutines*rounds+1, time.Minute, time.Minute), nil)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := fmt.Sprintf("192.0.2.%d", g)
			for range rounds {
				th.Failure(ip)
				th.Blocked(ip)
				th.Success(ip)
				th.Failure("198.51.100.1")
			}
		}()
	}
	wg.Wait()
	// Every one of the goroutines×rounds failures counted, so exactly one
	// more triggers the lockout.
	if b, _ := th.Blocked("198.51.100.1"); b {
		t.Fatal("failures were counted twice")
	}
	if !th.Failure("198.51.100.1") {
		t.Error("concurrent failures were lost")
	}
}
