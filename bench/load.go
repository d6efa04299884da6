package main

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graphrelay/graphrelay/bench/internal/benchkit"
)

// LoadResult is one throughput run.
type LoadResult struct {
	GraphLatencyMs float64 `json:"graph_latency_ms"`
	Clients        int     `json:"clients"`
	// Connections is "persistent" (up to Batch transactions per
	// connection) or "per-message" (connect, one transaction, QUIT).
	Connections string `json:"connections"`
	Batch       int    `json:"transactions_per_connection"`

	Accepted int `json:"accepted"` // 250 replies
	Refused  int `json:"refused"`  // 4xx/5xx replies
	Failed   int `json:"failed"`   // broken connections, timeouts
	// Delivered counts accepted messages the fake accepted (202) by the
	// end of the drain; Undelivered the rest.
	Delivered   int `json:"delivered"`
	Undelivered int `json:"undelivered"`
	Graph429    int `json:"graph_429"`
	GraphErrors int `json:"graph_other_errors"`

	LoadSeconds     float64 `json:"load_seconds"`
	AcceptedPerSec  float64 `json:"accepted_per_sec"`  // accepted / (last 250 - start)
	DeliveredPerSec float64 `json:"delivered_per_sec"` // delivered / (last delivery - start)
	// DataTo250 is timed by the client's clock, from just before the
	// write of the final dot to the reply read and parsed: it includes
	// the clients' own waits for a CPU. DataTo250Kernel ends instead when
	// the reply's first segment reached the client's socket, by the
	// kernel's receive timestamp (Linux); KernelFallbacks replies had no
	// stamp and are only in DataTo250.
	DataTo250       Dist `json:"data_to_250"`
	DataTo250Kernel Dist `json:"data_to_250_kernel_arrival"`
	KernelFallbacks int  `json:"kernel_arrival_fallbacks"`
	// DaemonWithin10ms is the share of 250s the daemon's own histogram
	// (graphrelay_smtp_accept_seconds) puts within 10 ms. It starts once
	// the daemon has read the final dot, so scheduling delays in either
	// process are not in it; -1 when unknown.
	DaemonWithin10ms float64 `json:"daemon_250_within_10ms"`
	ToDelivered      Dist    `json:"250_to_delivered"`

	// CPU per accepted message, from the start of the load to the end of
	// the drain: the daemon's, and this process's (SMTP clients and the
	// fake Graph), which share the same cores.
	DaemonCPUPerMsgUs float64 `json:"daemon_cpu_per_msg_us"`
	BenchCPUPerMsgUs  float64 `json:"bench_cpu_per_msg_us"`
	// OtherCPUCores is the CPU, in cores, that neither the daemon nor this
	// process used during the run: other processes, and kernel threads
	// such as the filesystem's journal. Much of it means the figures are
	// pessimistic.
	OtherCPUCores float64 `json:"other_cpu_cores"`
	DaemonRSSMB   float64 `json:"daemon_rss_after_mb"`
	FirstError    string  `json:"first_error,omitempty"`
}

// acceptHistogram is the daemon's end-of-DATA-to-reply histogram.
const acceptHistogram = "graphrelay_smtp_accept_seconds"

type loadSpec struct {
	clients    int
	perMessage bool
}

// sample is one accepted message as the client saw it.
type sample struct {
	subject                    string
	dataDone, replied, arrived time.Time
}

// loadRun sends messages from spec.clients concurrent clients for
// duration (or until maxMessages), then waits up to drain for the fake to
// have received every accepted message.
type loadRun struct {
	d *benchkit.Daemon
	// t is the fake the daemon delivers to; nil for a floor server,
	// which delivers nothing, so that nothing is counted delivered.
	t           *benchkit.Tenant
	tag         string
	spec        loadSpec
	duration    time.Duration
	drain       time.Duration
	batch       int
	maxMessages int64

	seq             atomic.Int64
	refused, failed atomic.Int64
	mu              sync.Mutex
	samples         []sample
	firstErr        error
}

func (r *loadRun) run() (LoadResult, error) {
	res := LoadResult{Clients: r.spec.clients, Connections: "persistent", Batch: r.batch}
	if r.spec.perMessage {
		res.Connections, res.Batch = "per-message", 1
	}
	if r.t != nil {
		res.GraphLatencyMs = msOf(r.t.Latency)
		r.t.Fake.Reset()
	}
	hist0, herr := r.d.Histogram(acceptHistogram)
	cpu0, err := r.d.CPU()
	if err != nil {
		return res, err
	}
	self0 := benchkit.SelfCPUTime()
	sys0, err := benchkit.SystemCPU()
	if err != nil {
		return res, err
	}
	start := time.Now()
	deadline := start.Add(r.duration)
	var wg sync.WaitGroup
	for range r.spec.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(deadline)
		}()
	}
	wg.Wait()
	res.LoadSeconds = time.Since(start).Seconds()
	res.Accepted, res.Refused, res.Failed = len(r.samples), int(r.refused.Load()), int(r.failed.Load())
	if r.firstErr != nil {
		res.FirstError = r.firstErr.Error()
	}
	if res.Accepted == 0 {
		return res, fmt.Errorf("no message accepted: %v\n%s", r.firstErr, r.d.LogTail(8))
	}

	// Deliveries are matched by subject among this run's messages only;
	// a message left over from an earlier run does not count.
	at := map[string]time.Time{}
	if r.t != nil {
		r.t.Fake.WaitDeliveries(res.Accepted, r.drain)
		for _, d := range r.t.Fake.Deliveries() {
			if _, dup := at[d.Message.Subject]; !dup && strings.HasPrefix(d.Message.Subject, r.tag+"-") {
				at[d.Message.Subject] = d.At
			}
		}
	}
	cpu1, err := r.d.CPU()
	if err != nil {
		return res, err
	}
	self1 := benchkit.SelfCPUTime()
	sys1, err := benchkit.SystemCPU()
	if err != nil {
		return res, err
	}
	res.OtherCPUCores = max(0, float64(sys1-sys0-(cpu1-cpu0)-(self1-self0))/float64(time.Since(start)))
	if r.t != nil {
		for _, g := range r.t.Fake.GraphRequests() {
			switch {
			case g.Status == 429:
				res.Graph429++
			case g.Status >= 300:
				res.GraphErrors++
			}
		}
	}

	var lastReply, lastDelivery time.Time
	accept := make([]time.Duration, 0, len(r.samples))
	arrive := make([]time.Duration, 0, len(r.samples))
	deliver := make([]time.Duration, 0, len(r.samples))
	for _, s := range r.samples {
		accept = append(accept, s.replied.Sub(s.dataDone))
		if s.arrived.IsZero() {
			res.KernelFallbacks++
		} else {
			// The kernel's stamp has no monotonic reading, so Sub
			// compares the two wall-clock readings.
			arrive = append(arrive, s.arrived.Sub(s.dataDone))
		}
		if s.replied.After(lastReply) {
			lastReply = s.replied
		}
		if r.t == nil {
			continue
		}
		d, ok := at[s.subject]
		if !ok {
			res.Undelivered++
			continue
		}
		res.Delivered++
		deliver = append(deliver, d.Sub(s.replied))
		if d.After(lastDelivery) {
			lastDelivery = d
		}
	}
	res.AcceptedPerSec = float64(res.Accepted) / lastReply.Sub(start).Seconds()
	if res.Delivered > 0 {
		res.DeliveredPerSec = float64(res.Delivered) / lastDelivery.Sub(start).Seconds()
	}
	res.DataTo250, res.DataTo250Kernel, res.ToDelivered = distOf(accept), distOf(arrive), distOf(deliver)
	res.DaemonWithin10ms = -1
	if hist1, err := r.d.Histogram(acceptHistogram); err == nil && herr == nil {
		if share, ok := hist1.Share(hist0, 0.01); ok {
			res.DaemonWithin10ms = share
		}
	}
	res.DaemonCPUPerMsgUs = float64((cpu1 - cpu0).Microseconds()) / float64(res.Accepted)
	res.BenchCPUPerMsgUs = float64((self1 - self0).Microseconds()) / float64(res.Accepted)
	if m, err := r.d.Memory(); err == nil {
		res.DaemonRSSMB = mb(m.RSS)
	}
	return res, nil
}

// client sends until the deadline, reconnecting after every batch (or
// every message) and after any error.
func (r *loadRun) client(deadline time.Time) {
	var c *benchkit.Client
	defer func() {
		if c != nil {
			c.Quit()
		}
	}()
	inConn := 0
	var mine []sample
	defer func() {
		r.mu.Lock()
		r.samples = append(r.samples, mine...)
		r.mu.Unlock()
	}()
	for time.Now().Before(deadline) {
		if c == nil {
			var err error
			if c, err = benchkit.Dial(r.d.Addr, 30*time.Second); err != nil {
				r.fail(&r.failed, err)
				time.Sleep(10 * time.Millisecond) // a refused connect must not spin
				continue
			}
			inConn = 0
		}
		i := r.seq.Add(1) - 1
		if i >= r.maxMessages {
			return
		}
		mailbox := floorMailbox
		if r.t != nil {
			mailbox = r.t.Mailboxes[int(i)%len(r.t.Mailboxes)]
		}
		subject := fmt.Sprintf("%s-%d", r.tag, i)
		rep, err := c.Send(mailbox, []string{"alice@company.com"}, message(mailbox, subject))
		if err != nil {
			var te *textproto.Error
			if errors.As(err, &te) {
				r.fail(&r.refused, err)
			} else {
				r.fail(&r.failed, err)
			}
			c.Close()
			c = nil
			continue
		}
		mine = append(mine, sample{subject, rep.DataDone, rep.Replied, rep.Arrived})
		if inConn++; r.spec.perMessage || inConn >= r.batch {
			c.Quit()
			c = nil
		}
	}
}

func (r *loadRun) fail(counter *atomic.Int64, err error) {
	counter.Add(1)
	r.mu.Lock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.mu.Unlock()
}

// floorMailbox is the sender of the messages sent to a floor server.
const floorMailbox = "printer@company.com"

// warmUp sends a few messages per mailbox through every part of the path
// (the token, TLS connections to the fake, the spool's spare files) so
// that the first run does not pay for them. With no fake (t nil, a floor
// server) it sends 64 and wants them all accepted.
func warmUp(d *benchkit.Daemon, t *benchkit.Tenant) error {
	n := 64
	if t != nil {
		n = 4 * len(t.Mailboxes)
	}
	r := &loadRun{d: d, t: t, tag: "warmup", spec: loadSpec{clients: 16}, duration: 30 * time.Second,
		drain: 30 * time.Second, batch: 50, maxMessages: int64(n)}
	res, err := r.run()
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if t == nil && res.Accepted < n {
		return fmt.Errorf("warm-up: %d of %d messages accepted (%d refused, %d failed: %s)\n%s",
			res.Accepted, n, res.Refused, res.Failed, res.FirstError, d.LogTail(8))
	}
	if t != nil && res.Delivered < n {
		return fmt.Errorf("warm-up: %d of %d messages delivered (%d refused, %d failed: %s)\n%s",
			res.Delivered, n, res.Refused, res.Failed, res.FirstError, d.LogTail(8))
	}
	return nil
}
