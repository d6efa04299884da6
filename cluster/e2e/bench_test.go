package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// BenchmarkRelayThroughput compares one relay on the local spool with
// one and three relays on the cluster in the setup: one mailbox, a fake
// Graph that allows 4 concurrent requests per mailbox and answers 429
// beyond, and 16 SMTP clients spread over the relays. At Graph latencies
// of 100 ms and 300 ms (real sendMail takes hundreds of milliseconds) the
// mailbox's budget is the limit, 40 and 13.3 msg/s; with an instant Graph
// the processes' CPU is, and on one machine the cluster's relays share
// it with three NATS servers.
//
// It reports messages per second from the first DATA to the last
// delivery (b.N messages, counted), the 429s (an error if any), the
// share of the budget used between the first request and the last, and
// the CPU time of the relays and NATS servers per message. Run it with a
// fixed count, for example:
//
//	go test -run '^$' -bench RelayThroughput -benchtime 640x ./cluster/e2e
func BenchmarkRelayThroughput(b *testing.B) {
	const limit = 4
	for _, latency := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 0} {
		for _, setup := range []struct {
			name    string
			relays  int
			backend string
		}{{"local-1", 1, "local"}, {"jetstream-1", 1, "jetstream"}, {"jetstream-3", 3, "jetstream"}} {
			b.Run(fmt.Sprintf("graph-%v/%s", latency, setup.name), func(b *testing.B) {
				r := newRig(b, setup.relays, graphtest.Config{Latency: latency, MaxConcurrency: limit}, setup.backend, "400ms")
				var relayPids, natsPids []int
				for _, p := range r.relays {
					relayPids = append(relayPids, p.cmd.Process.Pid)
				}
				if r.nats != nil {
					for _, n := range r.nats.Nodes {
						natsPids = append(natsPids, n.Pid())
					}
				}
				relayCPU, natsCPU := cpuTime(relayPids), cpuTime(natsPids)
				b.ResetTimer()
				start := time.Now()
				acc, refusals := r.loadOneMailbox(16, max(1, b.N/16))
				r.waitAllDelivered(acc, 10*time.Minute)
				elapsed := time.Since(start)
				b.StopTimer()
				relayCPU, natsCPU = cpuTime(relayPids)-relayCPU, cpuTime(natsPids)-natsCPU
				if len(refusals) > 0 {
					b.Errorf("%d of %d messages refused, e.g. %s", len(refusals), len(acc)+len(refusals), refusals[0])
				}
				throttled := 0
				var first, last time.Time
				var busy time.Duration
				for _, g := range r.fake.GraphRequests() {
					if g.Status == 429 {
						throttled++
					}
					if first.IsZero() || g.Start.Before(first) {
						first = g.Start
					}
					last = maxTime(last, g.End)
					busy += g.End.Sub(g.Start)
				}
				if throttled > 0 {
					b.Errorf("%d requests got 429 from the fake's limit of %d concurrent requests per mailbox", throttled, limit)
				}
				n := float64(len(acc))
				b.ReportMetric(n/elapsed.Seconds(), "msg/s")
				b.ReportMetric(float64(throttled), "429s")
				b.ReportMetric(busy.Seconds()/(limit*last.Sub(first).Seconds()), "budget-used")
				b.ReportMetric(relayCPU.Seconds()*1000/n, "relay-cpu-ms/msg")
				b.ReportMetric(natsCPU.Seconds()*1000/n, "nats-cpu-ms/msg")
			})
		}
	}
}

// loadOneMailbox sends perClient messages from each of clients SMTP
// clients, all as alerts@company.com, spread over the relays; it returns
// what got 250 and the replies of what did not.
func (r *clusterRig) loadOneMailbox(clients, perClient int) (acc []accepted, refusals []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			relay := r.relays[c%len(r.relays)]
			for i := range perClient {
				subject := fmt.Sprintf("one-%d-%d", c, i)
				res, err := e2etest.SendRawSMTP(relay.addr, "alerts@company.com", []string{"alice@company.com"},
					e2etest.SimpleMessage("alerts@company.com", subject), 30*time.Second)
				mu.Lock()
				if err == nil && res.Code == 250 {
					acc = append(acc, accepted{subject, strings.TrimPrefix(res.Msg, "2.0.0 queued as ")})
				} else {
					refusals = append(refusals, fmt.Sprintf("%s: %d %s %v", subject, res.Code, res.Msg, err))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acc, refusals
}

// cpuTime is the user and system CPU time the processes have used
// (Linux /proc; zero elsewhere).
func cpuTime(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name, which may hold spaces: state is
		// the first, utime the 12th, stime the 13th.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
