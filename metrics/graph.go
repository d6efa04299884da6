package metrics

import "time"

// The delivery side: called by the queue (or direct mode) and the token
// source.

// Delivered records a message Graph accepted, with the time since its 250.
func (m *Metrics) Delivered(mailbox string, sinceAccepted time.Duration) {
	m.delivered.WithLabelValues(mailbox).Inc()
	m.deliverLatency.WithLabelValues(mailbox).Observe(sinceAccepted.Seconds())
}

// DeliveryFailed records a failed attempt; retry says whether another
// attempt is scheduled.
func (m *Metrics) DeliveryFailed(mailbox, code, class string, retry bool) {
	if code == "" {
		code = "none"
	}
	m.failures.WithLabelValues(mailbox, code, class).Inc()
	if retry {
		m.retries.WithLabelValues(mailbox).Inc()
	}
}

// QueueStats sets the depth and oldest age for one mailbox.
func (m *Metrics) QueueStats(mailbox string, depth int, oldest time.Duration) {
	m.queueDepth.WithLabelValues(mailbox).Set(float64(depth))
	m.queueOldest.WithLabelValues(mailbox).Set(oldest.Seconds())
}

// Damaged sets the number of quarantined spool entries.
func (m *Metrics) Damaged(entries int) { m.queueDamaged.Set(float64(entries)) }

// TokenFetched records a token request's outcome; code is "" on success.
func (m *Metrics) TokenFetched(code string) {
	if code == "" {
		m.tokenRefreshes.Inc()
		return
	}
	m.tokenFailures.WithLabelValues(code).Inc()
}

// DeadLettered records a message given up.
func (m *Metrics) DeadLettered(mailbox, reason string) {
	m.deadLetters.WithLabelValues(mailbox, reason).Inc()
}

// Throttled records a 429 and the time it added under the mailbox's
// Retry-After floor.
func (m *Metrics) Throttled(mailbox string, throttled bool, floorAdded time.Duration) {
	if throttled {
		m.throttled.WithLabelValues(mailbox).Inc()
	}
	m.underFloor.WithLabelValues(mailbox).Add(floorAdded.Seconds())
}
