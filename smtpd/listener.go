package smtpd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graphrelay/graphrelay/config"
)

// accessListener admits clients before go-smtp sees them: by network, by
// total and per-IP connection counts, and not while the IP is locked out
// for AUTH failures. Refused clients get one reply line and are closed, so
// a device outside the allowed networks learns why instead of timing out.
type accessListener struct {
	net.Listener
	cfg      config.Listener
	nets     []netip.Prefix
	throttle Throttle
	log      *slog.Logger
	obs      Observer

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
	open  map[*trackedConn]struct{}
	slotWaiters

	closeOnce sync.Once
}

// Close closes the socket once: Shutdown closes it before go-smtp's
// Shutdown does it again, and a second close must not read as a failure.
func (l *accessListener) Close() error {
	var err error
	l.closeOnce.Do(func() { err = l.Listener.Close() })
	return err
}

func newAccessListener(l net.Listener, cfg config.Listener, nets []netip.Prefix, th Throttle, log *slog.Logger) *accessListener {
	return &accessListener{Listener: l, cfg: cfg, nets: nets, throttle: th, log: log, obs: nopObserver{},
		perIP: map[netip.Addr]int{}, open: map[*trackedConn]struct{}{}, slotWaiters: newSlotWaiters()}
}

// Accept returns the next admitted connection. Refusals are handled in
// their own goroutine so a flood of them cannot stall admission.
func (l *accessListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		code, reason, full := l.admit(ip)
		if code == 0 {
			tc := &trackedConn{Conn: c, l: l, ip: ip}
			l.mu.Lock()
			l.open[tc] = struct{}{}
			l.mu.Unlock()
			l.obs.ConnectionOpened(l.cfg.Name)
			return tc, nil
		}
		if full && l.startWaiting(ip) {
			// It waits for a slot in its own goroutine (slotwait.go).
			return &trackedConn{Conn: c, l: l, ip: ip, waitReply: reason}, nil
		}
		l.obs.ConnectionRefused(l.cfg.Name, code)
		go l.refuse(c, ip, code, reason)
	}
}

// admit decides at once, and takes a slot when the answer is yes. full
// reports a refusal for the connection limits only, which a slot freed
// in a moment could turn into a yes.
func (l *accessListener) admit(ip netip.Addr) (code int, reply string, full bool) {
	if !l.allowed(ip) {
		return 554, fmt.Sprintf("554 5.7.1 Client %s is not permitted to use this relay", ip), false
	}
	if l.throttle != nil {
		if blocked, left := l.throttle.Blocked(ip.String()); blocked {
			return 421, fmt.Sprintf("421 4.7.0 Too many authentication failures from %s; try again in %s", ip, left.Round(time.Second)), false
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if reply := l.limitReply(ip); reply != "" {
		return 421, reply, true
	}
	l.total++
	l.perIP[ip]++
	return 0, "", false
}

// limitReply is the refusal for ip when a connection limit is reached,
// "" when a slot is free; l.mu is held.
func (l *accessListener) limitReply(ip netip.Addr) string {
	if l.total >= l.cfg.MaxConnections {
		return "421 4.7.0 Too many connections; try again later"
	}
	if l.perIP[ip] >= l.cfg.MaxConnectionsPerIP {
		return fmt.Sprintf("421 4.7.0 Too many connections from %s; try again later", ip)
	}
	return ""
}

func (l *accessListener) allowed(ip netip.Addr) bool {
	for _, n := range l.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (l *accessListener) refuse(c net.Conn, ip netip.Addr, code int, reply string) {
	defer c.Close()
	why := "client network not allowed on this listener; add it to the listener's networks if it should relay"
	if code == 421 {
		why = "connection limit or AUTH lockout; raise max_connections/max_connections_per_ip if this client is legitimate"
	}
	l.log.Warn("connection refused", "client_ip", ip.String(), "reply", reply, "hint", why)
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "%s\r\n", reply)
}

func (l *accessListener) release(tc *trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.open[tc]; !ok {
		return
	}
	delete(l.open, tc)
	l.obs.ConnectionClosed(l.cfg.Name)
	l.total--
	if l.perIP[tc.ip]--; l.perIP[tc.ip] <= 0 {
		delete(l.perIP, tc.ip)
	}
	l.slotFreed()
}

// closeAll closes the sessions still open at the shutdown deadline;
// go-smtp's Close does not.
func (l *accessListener) closeAll() { l.closeWhere(func(*trackedConn) bool { return true }) }

// closeIdle closes the sessions with no transaction under way, at the
// start of a shutdown: go-smtp's Shutdown would wait for them until the
// deadline, and a client that holds an idle connection open must not
// consume the whole shutdown budget. No 250 is lost: an idle session owes
// no reply.
func (l *accessListener) closeIdle() {
	l.closeWhere(func(c *trackedConn) bool { return !c.busy.Load() })
}

func (l *accessListener) closeWhere(pred func(*trackedConn) bool) {
	l.mu.Lock()
	conns := make([]*trackedConn, 0, len(l.open))
	for c := range l.open {
		if pred(c) {
			conns = append(conns, c)
		}
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// trackedConn releases its slot in the listener's counts exactly once,
// and remembers when a read failed (the client hung up or timed out), for
// cutShortGuard.
//
// The slot is released as soon as the session is over for the client,
// not when go-smtp gets round to closing the socket: a client that
// reconnects the moment it reads the 221 would otherwise find its old
// connection still counted and get a spurious 421 at the per-IP limit.
// Over is: a failed read other than a timeout (the client hung up;
// go-smtp ends the session on such errors), the reply to QUIT about to be written (on a plain
// connection, where it can be seen), or the TLS session's Logout
// (session.Logout).
type trackedConn struct {
	net.Conn
	l          *accessListener
	ip         netip.Addr
	once       sync.Once
	readFailed atomic.Bool
	// waitReply, when set, is the refusal this connection gets unless a
	// slot frees up for it in time (slotwait.go); its first read or write
	// waits for that.
	waitReply string
	gateOnce  sync.Once
	gateErr   error
	// busy is set from MAIL until the transaction's reply is written.
	busy atomic.Bool
	// held is the start of a multi-line reply not written yet (Write).
	// Only the session's goroutine writes.
	held []byte
}

// Read notes the client hanging up. A timeout is not that: go-smtp may
// carry on after one (a DATA that took too long is answered and the
// session continues), and ends the session itself when it does not.
func (c *trackedConn) Read(p []byte) (int, error) {
	if err := c.gate(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			c.readFailed.Store(true)
			c.releaseSlot()
		}
	}
	return n, err
}

// Write releases the slot before the reply to QUIT goes out, so the
// client cannot see the 221 before its slot is free: "221 " starts no
// other reply go-smtp sends; on TLS the bytes here are records, which
// never start with it.
//
// go-smtp flushes each line of a multi-line reply on its own, so the
// reply to EHLO was eight write(2) calls. Write holds back a line that
// says more lines follow ("250-"), and sends it with the reply's last
// line in one call. Such a line is always followed by the rest of its
// reply (RFC 5321 4.2.1), so nothing is held while the server waits for
// the client.
func (c *trackedConn) Write(p []byte) (int, error) {
	if err := c.gate(); err != nil {
		return 0, err
	}
	if isContinuation(p) {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if len(p) >= 4 && string(p[:4]) == "221 " {
		c.releaseSlot()
	}
	if len(c.held) == 0 {
		return c.Conn.Write(p)
	}
	c.held = append(c.held, p...)
	_, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// isContinuation reports a plain-text reply line that is not its
// reply's last: three digits and a hyphen, ending in CRLF. TLS records
// start with a byte below '0'.
func isContinuation(p []byte) bool {
	return len(p) >= 6 && p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' &&
		p[2] >= '0' && p[2] <= '9' && p[3] == '-' && p[len(p)-2] == '\r' && p[len(p)-1] == '\n'
}

func (c *trackedConn) releaseSlot() {
	c.once.Do(func() { c.l.release(c) })
}

func (c *trackedConn) Close() error {
	c.releaseSlot()
	return c.Conn.Close()
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
