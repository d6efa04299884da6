// Package metrics exposes graphrelay's Prometheus metrics. It implements
// the observer interfaces that smtpd, the queue and graph declare, so those
// packages stay free of Prometheus.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector, registered on its own registry so tests
// can run several daemons in one process.
type Metrics struct {
	Registry *prometheus.Registry

	connections   *prometheus.GaugeVec
	refused       *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	lockouts      *prometheus.CounterVec
	received      *prometheus.CounterVec
	accepted      *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	acceptLatency *prometheus.HistogramVec
	cmdRefused    *prometheus.CounterVec

	delivered       *prometheus.CounterVec
	failures        *prometheus.CounterVec
	retries         *prometheus.CounterVec
	deadLetters     *prometheus.CounterVec
	deliverLatency  *prometheus.HistogramVec
	queueDepth      *prometheus.GaugeVec
	queueOldest     *prometheus.GaugeVec
	queueDamaged    prometheus.Gauge
	tokenRefreshes  prometheus.Counter
	tokenFailures   *prometheus.CounterVec
	credentialNotAt prometheus.Gauge
	throttled       *prometheus.CounterVec
	underFloor      *prometheus.CounterVec
}

// New creates and registers the collectors, with Go runtime and process
// metrics alongside.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.Registry.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.connections = gaugeVec(f, "graphrelay_smtp_connections_active", "Open SMTP connections.", "listener")
	m.refused = counterVec(f, "graphrelay_smtp_connections_refused_total", "Connections refused at connect, by reply code (554 network, 421 limits or lockout).", "listener", "code")
	m.authFailures = counterVec(f, "graphrelay_smtp_auth_failures_total", "Failed SMTP AUTH attempts.", "listener")
	m.lockouts = counterVec(f, "graphrelay_smtp_auth_lockouts_total", "Client IPs locked out after repeated AUTH failures.", "listener")
	m.received = counterVec(f, "graphrelay_messages_received_total", "Messages whose DATA was received.", "listener")
	m.accepted = counterVec(f, "graphrelay_messages_accepted_total", "Messages answered 250 (queued, or delivered in direct mode).", "listener")
	m.rejected = counterVec(f, "graphrelay_messages_rejected_total", "Messages refused at the end of DATA, by reply code and enhanced code.", "listener", "code", "enhanced")
	m.cmdRefused = counterVec(f, "graphrelay_smtp_command_refusals_total", "MAIL and RCPT commands refused, by command, reply code and reason (relay_denied, sender_denied, auth_required, too_many_recipients, bad_address).", "listener", "command", "code", "reason")
	m.acceptLatency = histogramVec(f, "graphrelay_smtp_accept_seconds", "Time from the end of DATA to the reply.",
		[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "listener")

	m.delivered = counterVec(f, "graphrelay_messages_delivered_total", "Messages accepted by Graph (202).", "mailbox")
	m.failures = counterVec(f, "graphrelay_delivery_failures_total", "Failed Graph delivery attempts, by Graph error code and class.", "mailbox", "code", "class")
	m.retries = counterVec(f, "graphrelay_delivery_retries_total", "Delivery attempts scheduled for a retry.", "mailbox")
	m.deliverLatency = histogramVec(f, "graphrelay_delivery_seconds", "Time from the 250 reply to Graph's 202.",
		[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}, "mailbox")
	m.queueDepth = gaugeVec(f, "graphrelay_queue_depth", "Messages waiting in the spool.", "mailbox")
	m.queueOldest = gaugeVec(f, "graphrelay_queue_oldest_age_seconds", "Age of the oldest message waiting in the spool.", "mailbox")
	m.queueDamaged = prometheus.NewGauge(prometheus.GaugeOpts{Name: "graphrelay_queue_damaged",
		Help: "Spool entries quarantined in damaged/ because they could not be read; see graphrelay queue damaged."})
	f(m.queueDamaged)
	m.tokenRefreshes = prometheus.NewCounter(prometheus.CounterOpts{Name: "graphrelay_token_refreshes_total", Help: "Access tokens obtained from Entra ID."})
	f(m.tokenRefreshes)
	m.tokenFailures = counterVec(f, "graphrelay_token_failures_total", "Failed token requests, by AADSTS or HTTP code.", "code")
	m.credentialNotAt = prometheus.NewGauge(prometheus.GaugeOpts{Name: "graphrelay_credential_expiry_timestamp_seconds",
		Help: "When the app credential (certificate) expires, as a Unix time; 0 when unknown (secrets and managed identities)."})
	f(m.credentialNotAt)
	m.deadLetters = counterVec(f, "graphrelay_messages_dead_lettered_total", "Messages given up and moved to the spool's failed/ area (see graphrelay queue failed), by reason: permanent or expired.", "mailbox", "reason")
	m.throttled = counterVec(f, "graphrelay_graph_throttled_total", "Graph requests answered 429 Too Many Requests.", "mailbox")
	m.underFloor = counterVec(f, "graphrelay_graph_throttle_floor_seconds_total", "Time the mailbox spent under a Retry-After floor, when no request for it may start.", "mailbox")
	return m
}

func counterVec(reg func(prometheus.Collector), name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	reg(c)
	return c
}

func gaugeVec(reg func(prometheus.Collector), name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	reg(g)
	return g
}

func histogramVec(reg func(prometheus.Collector), name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	reg(h)
	return h
}

// SetCredentialExpiry records the certificate's NotAfter.
func (m *Metrics) SetCredentialExpiry(t time.Time) {
	if t.IsZero() {
		m.credentialNotAt.Set(0)
		return
	}
	m.credentialNotAt.Set(float64(t.Unix()))
}
