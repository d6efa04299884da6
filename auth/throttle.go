package auth

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"github.com/graphrelay/graphrelay/config"
)

// MaxTracked caps the number of clients the Throttle remembers. An entry
// takes about 200 bytes, so the cap bounds the memory at roughly 13 MB
// however many addresses a scan comes from.
const MaxTracked = 65536

// Defaults for a zero config.Auth field, the same as config's defaults, so
// a Throttle built from a zero value protects instead of blocking everyone
// (MaxFailures 0) or nobody (Lockout 0).
const (
	defaultMaxFailures = 5
	defaultWindow      = 5 * time.Minute
	defaultLockout     = 15 * time.Minute
)

// Throttle counts AUTH failures per client. After MaxFailures failures
// within Window the client is blocked for Lockout. Safe for concurrent use.
// Begin makes the count atomic with the password check: a guess is
// reserved before it is checked, so however many connections one client
// opens, at most MaxFailures guesses are checked per window.
//
// The window is fixed, starting at a client's first failure, rather than
// sliding: it needs one counter per client instead of a timestamp per
// failure, so memory does not grow with max_failures. The price is that a
// client timing its attempts around a window boundary can make up to
// 2×(MaxFailures−1) attempts in a short span before being blocked; over
// time it is still held to about MaxFailures per Window.
//
// A client is an IPv4 address or an IPv6 /64: one site usually gets a
// whole /64 and can pick any address in it, so counting single IPv6
// addresses would let one attacker step around the limit forever.
type Throttle struct {
	maxFailures int
	window      time.Duration
	lockout     time.Duration
	now         func() time.Time
	cap         int

	mu      sync.Mutex
	clients map[string]*list.Element // of *client
	// order holds the clients from least to most recently failed, so the
	// oldest is evicted first when the cap is reached.
	order list.List
}

type client struct {
	key      string
	first    time.Time // start of the current window
	failures int       // in the current window
	until    time.Time // blocked until then; zero when not blocked
	// pending counts the guesses reserved by Begin whose outcome is not
	// known yet; failures+pending never exceeds maxFailures.
	pending int
	// changed, when not nil, is closed (and cleared) at the next change of
	// the counts, to wake the guesses waiting in Begin.
	changed chan struct{}
}

// NewThrottle makes a Throttle from the auth settings; now nil means
// time.Now (tests pass a fake clock).
func NewThrottle(cfg config.Auth, now func() time.Time) *Throttle {
	t := &Throttle{
		maxFailures: cfg.MaxFailures,
		window:      cfg.Window.D(),
		lockout:     cfg.Lockout.D(),
		now:         now,
		cap:         MaxTracked,
		clients:     map[string]*list.Element{},
	}
	if t.maxFailures <= 0 {
		t.maxFailures = defaultMaxFailures
	}
	if t.window <= 0 {
		t.window = defaultWindow
	}
	if t.lockout <= 0 {
		t.lockout = defaultLockout
	}
	if t.now == nil {
		t.now = time.Now
	}
	return t
}

// Blocked reports whether ip is locked out and for how much longer.
func (t *Throttle) Blocked(ip string) (bool, time.Duration) {
	key := clientKey(ip)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.clients[key]
	if !ok {
		return false, 0
	}
	c := el.Value.(*client)
	if now.Before(c.until) {
		return true, c.until.Sub(now)
	}
	if t.expired(c, now) {
		t.remove(el)
	}
	return false, 0
}

// Failure records a failed AUTH from ip. It returns true when this failure
// triggered the lockout, so the caller logs it once. Failures while
// already blocked (a second connection racing the first) neither extend
// the lockout nor report it again.
func (t *Throttle) Failure(ip string) bool {
	key := clientKey(ip)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failLocked(t.entry(key, now), now)
}

// entry returns key's client, made and counted as the most recent; t.mu
// is held.
func (t *Throttle) entry(key string, now time.Time) *client {
	el, ok := t.clients[key]
	if !ok {
		t.makeRoom(now)
		el = t.order.PushBack(&client{key: key, first: now})
		t.clients[key] = el
	} else {
		t.order.MoveToBack(el)
	}
	return el.Value.(*client)
}

// refresh starts a new window when the lockout or the window is over;
// t.mu is held. Guesses in flight stay counted.
func (t *Throttle) refresh(c *client, now time.Time) {
	if !c.until.IsZero() && !now.Before(c.until) || c.until.IsZero() && now.Sub(c.first) >= t.window {
		c.first, c.failures, c.until = now, 0, time.Time{}
	}
}

// failLocked counts one failure; t.mu is held.
func (t *Throttle) failLocked(c *client, now time.Time) bool {
	defer c.notify()
	if now.Before(c.until) {
		return false
	}
	t.refresh(c, now)
	c.failures++
	if c.failures < t.maxFailures {
		return false
	}
	c.failures = 0
	c.until = now.Add(t.lockout)
	return true
}

// notify wakes the guesses waiting for a change of c.
func (c *client) notify() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// Success clears ip's failure count after a good AUTH. It does not lift a
// lockout in force: a client that knows one valid credential must not be
// able to use it to keep guessing others.
func (t *Throttle) Success(ip string) {
	key := clientKey(ip)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.clients[key]
	if !ok {
		return
	}
	c := el.Value.(*client)
	if now.Before(c.until) {
		return
	}
	if c.pending > 0 {
		// Guesses in flight still need their entry.
		c.first, c.failures, c.until = now, 0, time.Time{}
		c.notify()
		return
	}
	t.remove(el)
}

// expired reports whether c holds nothing worth remembering: no lockout in
// force and no failures in a current window.
func (t *Throttle) expired(c *client, now time.Time) bool {
	return c.pending == 0 && !now.Before(c.until) && now.Sub(c.first) >= t.window
}

// evictScan bounds the work of making room in a full table, so a scan of
// many addresses costs O(1) per new address.
const evictScan = 64

// makeRoom drops expired clients from the old end and, when the table is
// full, frees one slot: among the evictScan least recently failed clients,
// an expired one, else the oldest not locked out, else the oldest. A
// lockout is thus the last thing to go; an attacker who can still push one
// out controls tens of thousands of addresses and could spread its guesses
// over them anyway.
func (t *Throttle) makeRoom(now time.Time) {
	for el := t.order.Front(); el != nil && t.expired(el.Value.(*client), now); el = t.order.Front() {
		t.remove(el)
	}
	if len(t.clients) < t.cap {
		return
	}
	var victim *list.Element
	el := t.order.Front()
	for i := 0; i < evictScan && el != nil; i++ {
		next := el.Next()
		c := el.Value.(*client)
		switch {
		case t.expired(c, now):
			t.remove(el)
		case victim == nil && !now.Before(c.until):
			victim = el
		}
		el = next
	}
	if len(t.clients) < t.cap {
		return
	}
	if victim == nil {
		victim = t.order.Front()
	}
	t.remove(victim)
}

func (t *Throttle) remove(el *list.Element) {
	c := el.Value.(*client)
	delete(t.clients, c.key)
	t.order.Remove(el)
	c.notify()
}

// clientKey maps an address to the client it stands for: an IPv4 address
// (IPv4-mapped IPv6 included) or an IPv6 /64. A "host:port" is accepted so
// that a caller passing RemoteAddr().String() still counts per client,
// not per connection. Anything unparsable is used as given.
func clientKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(ip)
		if err2 != nil {
			return ip
		}
		addr = ap.Addr()
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}
