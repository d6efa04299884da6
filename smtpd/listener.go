package smtpd

import (
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
		perIP: map[netip.Addr]int{}, open: map[*trackedConn]struct{}{}}
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
		code, reason := l.admit(ip)
		if code == 0 {
			tc := &trackedConn{Conn: c, l: l, ip: ip}
			l.mu.Lock()
			l.open[tc] = struct{}{}
			l.mu.Unlock()
			l.obs.ConnectionOpened(l.cfg.Name)
			return tc, nil
		}
		l.obs.ConnectionRefused(l.cfg.Name, code)
		go l.refuse(c, ip, code, reason)
	}
}

func (l *accessListener) admit(ip netip.Addr) (int, string) {
	if !l.allowed(ip) {
		return 554, fmt.Sprintf("554 5.7.1 Client %s is not permitted to use this relay", ip)
	}
	if l.throttle != nil {
		if blocked, left := l.throttle.Blocked(ip.String()); blocked {
			return 421, fmt.Sprintf("421 4.7.0 Too many authentication failures from %s; try again in %s", ip, left.Round(time.Second))
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.cfg.MaxConnections {
		return 421, "421 4.7.0 Too many connections; try again later"
	}
	if l.perIP[ip] >= l.cfg.MaxConnectionsPerIP {
		return 421, fmt.Sprintf("421 4.7.0 Too many connections from %s; try again later", ip)
	}
	l.total++
	l.perIP[ip]++
	return 0, ""
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

// trackedConn releases its slot in the listener's counts exactly once.
type trackedConn struct {
	net.Conn
	l    *accessListener
	ip   netip.Addr
	once sync.Once
	// busy is set from MAIL until the transaction's reply is written.
	busy atomic.Bool
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.l.release(c) })
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
