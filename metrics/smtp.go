package metrics

import (
	"strconv"
	"time"
)

// The SMTP side: Metrics implements smtpd.Observer.

func (m *Metrics) ConnectionOpened(listener string) { m.connections.WithLabelValues(listener).Inc() }
func (m *Metrics) ConnectionClosed(listener string) { m.connections.WithLabelValues(listener).Dec() }

func (m *Metrics) ConnectionRefused(listener string, code int) {
	m.refused.WithLabelValues(listener, strconv.Itoa(code)).Inc()
}

func (m *Metrics) AuthFailed(listener string, lockedOut bool) {
	m.authFailures.WithLabelValues(listener).Inc()
	if lockedOut {
		m.lockouts.WithLabelValues(listener).Inc()
	}
}

func (m *Metrics) MessageAnswered(listener string, code int, enhanced string, size int64, elapsed time.Duration) {
	m.received.WithLabelValues(listener).Inc()
	if code == 250 {
		m.accepted.WithLabelValues(listener).Inc()
		m.acceptLatency.WithLabelValues(listener).Observe(elapsed.Seconds())
		return
	}
	m.rejected.WithLabelValues(listener, strconv.Itoa(code), enhanced).Inc()
}

func (m *Metrics) CommandRefused(listener, command string, code int, reason string) {
	m.cmdRefused.WithLabelValues(listener, command, strconv.Itoa(code), reason).Inc()
}
