package smtpd

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// A connection that finds its IP (or the listener) at the connection
// limit waits for a slot before it is refused. A client that reconnects
// at once can otherwise beat its old connection's release: on a plain
// connection the slot is freed before the 221 is written
// (trackedConn.Write), but on TLS the reply is encrypted and the slot is
// freed only at the session's Logout, just after; and a client that
// hangs up right after sending QUIT, or right after its 250 without any
// QUIT (many devices do), frees its slot only when the server has read
// that, which on a busy machine can come after the new connection's
// accept. Each of a client's connections can leave one successor in that
// race, so an IP may have as many waiting connections as its limit
// allows it open. The wait runs in the connection's own goroutine, at its
// first read or write, so the accept loop never waits; the grace is far
// below any SMTP client's greeting timeout (RFC 5321 4.5.3.2.1: 5
// minutes), and the number of waiting connections is bounded per IP and
// in total, so a flood gets its 421 at once as before.
const (
	slotGrace      = 5 * time.Second
	maxSlotWaiters = 64
)

// errNoSlot ends a connection that waited for a slot in vain; it has
// been sent its 421 and closed. It wraps net.ErrClosed so go-smtp ends
// the session quietly, the refusal being logged already.
var errNoSlot = fmt.Errorf("no connection slot became free: %w", net.ErrClosed)

// slotWaiters is the accessListener's record of waiting connections,
// guarded by its mu.
type slotWaiters struct {
	waiting      map[netip.Addr]int
	waitingTotal int
	// freed is closed, and replaced, whenever a slot is released while
	// someone waits.
	freed chan struct{}
}

func newSlotWaiters() slotWaiters {
	return slotWaiters{waiting: map[netip.Addr]int{}, freed: make(chan struct{})}
}

// startWaiting registers a waiter for ip, if the bounds allow one.
func (l *accessListener) startWaiting(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waiting[ip] >= l.maxWaitersPerIP() || l.waitingTotal >= maxSlotWaiters {
		return false
	}
	l.waiting[ip]++
	l.waitingTotal++
	return true
}

// maxWaitersPerIP is how many connections of one IP may wait for a
// slot: one successor for each connection the IP may hold.
func (l *accessListener) maxWaitersPerIP() int {
	return min(l.cfg.MaxConnectionsPerIP, maxSlotWaiters)
}

// stopWaiting unregisters a waiter; l.mu is held.
func (l *accessListener) stopWaiting(ip netip.Addr) {
	l.waitingTotal--
	if l.waiting[ip]--; l.waiting[ip] <= 0 {
		delete(l.waiting, ip)
	}
}

// slotFreed wakes the waiters; l.mu is held.
func (l *accessListener) slotFreed() {
	if l.waitingTotal > 0 {
		close(l.freed)
		l.freed = make(chan struct{})
	}
}

// gate admits a waiting connection before its first byte moves, or
// refuses it with the reply it would have had at accept.
func (c *trackedConn) gate() error {
	if c.waitReply == "" {
		return nil
	}
	c.gateOnce.Do(func() { c.gateErr = c.l.awaitSlot(c) })
	return c.gateErr
}

func (l *accessListener) awaitSlot(c *trackedConn) error {
	timer := time.NewTimer(slotGrace)
	defer timer.Stop()
	expired := false
	l.mu.Lock()
	for {
		reply := l.limitReply(c.ip)
		if reply == "" {
			l.total++
			l.perIP[c.ip]++
			l.open[c] = struct{}{}
			l.stopWaiting(c.ip)
			l.mu.Unlock()
			l.obs.ConnectionOpened(l.cfg.Name)
			return nil
		}
		if expired {
			l.stopWaiting(c.ip)
			l.mu.Unlock()
			l.obs.ConnectionRefused(l.cfg.Name, 421)
			l.refuse(c.Conn, c.ip, 421, reply)
			return errNoSlot
		}
		freed := l.freed
		l.mu.Unlock()
		select {
		case <-freed:
		case <-timer.C:
			expired = true
		}
		l.mu.Lock()
	}
}
