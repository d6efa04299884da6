package e2e

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/cluster/natstest"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// clusterRig is a 3-node NATS JetStream cluster, the fake tenant, and
// graphrelay processes (the real binary) in cluster mode in front of it.
type clusterRig struct {
	t      testing.TB
	dir    string
	bin    string
	nats   *natstest.Cluster
	fake   *graphtest.Server
	relays []*relayProc
}

// relayProc is one graphrelay process.
type relayProc struct {
	name, addr, admin, cfg, log string
	cmd                         *exec.Cmd
	done                        chan error
}

// newClusterRig starts NATS, the fake and n relays.
func newClusterRig(t testing.TB, n int, fakeCfg graphtest.Config) *clusterRig {
	return newRig(t, n, fakeCfg, "jetstream", "400ms")
}

// newRig starts n relays with the queue backend named; "local" starts no
// NATS and gives each relay its own spool.
func newRig(t testing.TB, n int, fakeCfg graphtest.Config, backend, retryMax string) *clusterRig {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and relay processes")
	}
	r := &clusterRig{t: t, dir: t.TempDir(), bin: e2etest.Binary(t)}
	urls := []string{`"nats://127.0.0.1:4222"`} // unused by the local backend
	if backend == "jetstream" {
		r.nats = natstest.Start(t, 3)
		urls = nil
		for _, u := range r.nats.URLs() {
			urls = append(urls, strconv.Quote(u))
		}
	}
	r.fake = e2etest.NewFake(t, fakeCfg)
	caFile := filepath.Join(r.dir, "fake-ca.pem")
	os.WriteFile(caFile, r.fake.CAPEM(), 0o644)
	for i := range n {
		p := &relayProc{name: fmt.Sprintf("relay%d", i), addr: loopbackAddr(t), admin: loopbackAddr(t)}
		p.cfg = filepath.Join(r.dir, p.name+".yaml")
		p.log = filepath.Join(r.dir, p.name+".log")
		os.WriteFile(p.cfg, []byte(fmt.Sprintf(`log:
  level: info
smtp:
  listeners:
    - name: cluster
      address: %s
  shutdown_timeout: 5s
graph:
  tenant_id: %s
  client_id: %s
  authority_url: %s
  graph_url: %s
  client_secret: %q
  ca_file: %s
  timeout: 30s
delivery:
  mode: queue
queue:
  backend: %s
  dir: %s
  retry_initial: 100ms
  retry_max: %s
  max_age: 1h
  jetstream:
    urls: [%s]
    replicas: 3
    lease: 3s
admin:
  listen: %s
mailboxes:
  - alerts@company.com
  - scans@company.com
default_mailbox: alerts@company.com
`, p.addr, r.fake.TenantID(), r.fake.ClientID(), r.fake.AuthorityURL(), r.fake.GraphURL(), e2etest.Secret, caFile,
			backend, filepath.Join(r.dir, p.name+"-spool"), retryMax, strings.Join(urls, ", "), p.admin)), 0o600)
		r.relays = append(r.relays, p)
		r.start(p)
	}
	t.Cleanup(func() {
		// All at once: each relay's graceful stop takes a second or two.
		for _, p := range r.relays {
			if p.cmd != nil {
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, p := range r.relays {
			if p.cmd != nil {
				<-p.done
			}
		}
	})
	return r
}

// start runs a relay process and waits until it listens.
func (r *clusterRig) start(p *relayProc) {
	r.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	defer logf.Close()
	for try := 0; ; try++ {
		logged, _ := logf.Seek(0, io.SeekEnd)
		p.cmd, p.done = exec.Command(r.bin, "serve", "--config", p.cfg), make(chan error, 1)
		p.cmd.Dir = r.dir
		p.cmd.Stdout, p.cmd.Stderr = logf, logf
		if err := p.cmd.Start(); err != nil {
			r.t.Fatal(err)
		}
		go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(p.cmd, p.done)
		// The daemon binds its listeners before it opens the queue
		// backend; /readyz answers 200 once it can store mail.
		if e2etest.WaitListening(p.addr, p.done, 30*time.Second) && r.waitReady(p, logged, 90*time.Second) {
			return
		}
		p.cmd.Process.Kill()
		<-p.done
		if try == 10 {
			r.t.Fatalf("%s did not come up on %s; log:\n%s", p.name, p.addr, e2etest.Tail(p.log))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// loopbackAddr returns a free 127.0.0.1 address.
func loopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitReady waits until the relay's /readyz answers 200 or it exits.
// It asks only once this run of the relay (its log from offset logged on)
// says it serves SMTP, which it does after opening the queue backend:
// the admin endpoint keeps an answer for 5 seconds, so a "not ready"
// from before the backend was open would hold the test back that long.
func (r *clusterRig) waitReady(p *relayProc, logged int64, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-p.done:
			p.done <- err
			return false
		default:
		}
		if b, _ := os.ReadFile(p.log); int64(len(b)) < logged || !strings.Contains(string(b[logged:]), "smtp listener ready") {
			continue
		}
		if resp, err := http.Get("http://" + p.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
	}
	return false
}

// kill9 kills a relay as a crash would.
func (r *clusterRig) kill9(p *relayProc) {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// logs returns every relay's log.
func (r *clusterRig) logs() string {
	var b strings.Builder
	for _, p := range r.relays {
		data, _ := os.ReadFile(p.log)
		b.Write(data)
	}
	return b.String()
}

// accepted is one message a client got 250 for.
type accepted struct{ subject, id string }

// load sends from clients spread over the relays until stop is closed or
// each client has sent perClient messages, and returns what got 250.
// A client whose relay is down waits and tries the next relay.
func (r *clusterRig) load(clients, perClient int, stop chan struct{}) (acc []accepted, refused int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := []string{"alerts@company.com", "scans@company.com"}[c%2]
			relay := c % len(r.relays)
			for i := 0; i < perClient; i++ {
				select {
				case <-stop:
					return
				default:
				}
				subject := fmt.Sprintf("cl-%d-%d", c, i)
				res, err := e2etest.SendRawSMTP(r.relays[relay].addr, from, []string{"alice@company.com"}, e2etest.SimpleMessage(from, subject), 30*time.Second)
				mu.Lock()
				if err == nil && res.Code == 250 {
					acc = append(acc, accepted{subject, strings.TrimPrefix(res.Msg, "2.0.0 queued as ")})
				} else if err == nil {
					refused++
				}
				mu.Unlock()
				if err != nil || res.Code != 250 {
					relay = (relay + 1) % len(r.relays)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	return acc, refused
}

// waitAllDelivered waits until every accepted subject reached the fake
// and returns how often each subject was delivered.
func (r *clusterRig) waitAllDelivered(acc []accepted, within time.Duration) map[string]int {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := map[string]int{}
		for _, d := range r.fake.Deliveries() {
			got[d.Message.Subject]++
		}
		var missing []string
		for _, a := range acc {
			if got[a.subject] == 0 {
				missing = append(missing, a.subject+" ("+a.id+")")
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			r.t.Fatalf("%d of %d accepted messages never reached Graph (lost), e.g. %v\nlog lines about the first:\n%s",
				len(missing), len(acc), missing[:min(5, len(missing))], grepLines(r.logs(), strings.TrimSuffix(strings.SplitN(missing[0], "(", 2)[1], ")"), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// grepLines returns up to n lines of logs containing s.
func grepLines(logs, s string, n int) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() && len(out) < n {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

// TestClusterSharedMailboxBudget: three relay processes sending as one
// mailbox to a fake that allows 4 concurrent requests per mailbox, under
// 16 clients spread over the three, never exceed the budget together.
func TestClusterSharedMailboxBudget(t *testing.T) {
	t.Parallel()
	r := newClusterRig(t, 3, graphtest.Config{MaxConcurrency: 4, Latency: 40 * time.Millisecond})
	start := time.Now()
	acc, refused := r.load(16, 12, nil)
	if refused > 0 || len(acc) != 16*12 {
		t.Fatalf("%d accepted, %d refused; want all %d accepted", len(acc), refused, 16*12)
	}
	got := r.waitAllDelivered(acc, 2*time.Minute)
	elapsed := time.Since(start)
	throttled := 0
	for _, g := range r.fake.GraphRequests() {
		if g.Status == 429 {
			throttled++
		}
	}
	if throttled > 0 {
		t.Errorf("%d requests got 429 from the fake's per-mailbox concurrency limit; the relays must share the budget", throttled)
	}
	for _, mb := range []string{"alerts@company.com", "scans@company.com"} {
		if m := r.fake.MaxInFlight(mb); m > 4 {
			t.Errorf("%s had %d requests in flight; the limit is 4 across the cluster", mb, m)
		}
	}
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	if dups > 0 {
		t.Errorf("%d duplicate deliveries without any crash", dups)
	}
	t.Logf("cluster of 3 relays: %d messages accepted and delivered in %v (%.1f msg/s, fake latency 40ms), max in flight alerts %d scans %d",
		len(acc), elapsed.Round(time.Millisecond), float64(len(acc))/elapsed.Seconds(),
		r.fake.MaxInFlight("alerts@company.com"), r.fake.MaxInFlight("scans@company.com"))
}

// TestClusterKill9 kill -9s relays under load ten times, and one NATS
// server once: every message that got 250 is delivered, and each
// duplicate delivery is one the relays logged as possible.
func TestClusterKill9(t *testing.T) {
	t.Parallel()
	r := newClusterRig(t, 3, graphtest.Config{Latency: 5 * time.Millisecond})
	stop := make(chan struct{})
	type result struct {
		acc     []accepted
		refused int
	}
	done := make(chan result, 1)
	go func() {
		acc, refused := r.load(6, 60, stop)
		done <- result{acc, refused}
	}()
	const kills = 10
	for k := range kills {
		time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
		p := r.relays[k%len(r.relays)]
		r.kill9(p)
		if k == kills/2 {
			// One NATS server too, while the relays are under load.
			r.nats.Kill(r.nats.Nodes[k%3])
			time.Sleep(500 * time.Millisecond)
			r.nats.Restart(r.nats.Nodes[k%3])
		}
		r.start(p)
	}
	close(stop)
	res := <-done
	if len(res.acc) < 50 {
		t.Fatalf("only %d messages accepted (%d refused); the load did not run", len(res.acc), res.refused)
	}
	got := r.waitAllDelivered(res.acc, 3*time.Minute)
	logs := r.logs()
	explained := e2etest.IDsOnLines(logs, "possible duplicate")
	dups, unexplained := 0, []string{}
	for _, a := range res.acc {
		if n := got[a.subject]; n > 1 {
			dups += n - 1
			if !explained[a.id] {
				unexplained = append(unexplained, a.subject+" ("+a.id+")")
			}
		}
	}
	if len(unexplained) > 0 {
		t.Errorf("%d messages delivered twice without a \"possible duplicate\" log line: %v", len(unexplained), unexplained)
	}
	t.Logf("%d relay kill -9s and 1 NATS kill -9: accepted %d, delivered %d, lost 0, duplicates %d (each logged as possible), refused with 4xx %d",
		kills, len(res.acc), len(res.acc), dups, res.refused)
}

// TestClusterLargeMessage: a 30 MB message goes through cluster mode
// whole, and no relay's peak resident memory reaches 100 MB.
func TestClusterLargeMessage(t *testing.T) {
	t.Parallel()
	r := newClusterRig(t, 2, graphtest.Config{Roles: []string{"Mail.Send", "Mail.ReadWrite"}})
	raw, attachment := e2etest.LargeMessage(22_000_000, 31)
	if len(raw) < 29_000_000 {
		t.Fatalf("message is %d bytes; want about 30 MB", len(raw))
	}
	res, err := e2etest.SendRawSMTP(r.relays[0].addr, "scans@company.com", []string{"alice@company.com"}, string(raw), 2*time.Minute)
	if err != nil || res.Code != 250 {
		t.Fatalf("30 MB message: %d %s %v\n%s", res.Code, res.Msg, err, e2etest.Tail(r.relays[0].log))
	}
	ds := r.fake.WaitDeliveries(1, 2*time.Minute)
	if len(ds) != 1 || len(ds[0].Message.Attachments) != 1 || string(ds[0].Message.Attachments[0].Content) != string(attachment) {
		t.Fatalf("the 30 MB message did not arrive whole: %d deliveries\n%s", len(ds), grepLines(r.logs(), "level=", 20))
	}
	// The fake has the message before its relay logs the delivery.
	e2etest.WaitFor(t, time.Minute, "a relay's delivered line", func() bool { return strings.Contains(r.logs(), "msg=delivered") })
	for _, p := range r.relays {
		hwm, err := vmHWM(p.cmd.Process.Pid)
		if err != nil {
			t.Skip(err)
		}
		logs, _ := os.ReadFile(p.log)
		t.Logf("%s: peak RSS (VmHWM) %.1f MiB; accepted it: %v, delivered it: %v", p.name, float64(hwm)/1024,
			strings.Contains(string(logs), `msg="message accepted"`), strings.Contains(string(logs), "msg=delivered"))
		if hwm >= 100*1000*1000/1024 {
			t.Errorf("%s peak RSS %d KiB; want under 100 MB", p.name, hwm)
		}
	}
}

// vmHWM reads a process's peak resident memory in KiB.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS needs Linux /proc: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// TestClusterRetryAfterHoldsBackOtherRelays: a 429 with Retry-After seen
// by one relay holds back the mailbox's requests on the others.
func TestClusterRetryAfterHoldsBackOtherRelays(t *testing.T) {
	t.Parallel()
	// retry_max caps a Retry-After; 5s lets the 3s one through whole.
	r := newRig(t, 3, graphtest.Config{}, "jetstream", "5s")
	r.fake.FailGraph(graphtest.Fault{Mailbox: "alerts@company.com", Status: 429, RetryAfter: "3"})
	if res, err := e2etest.SendRawSMTP(r.relays[0].addr, "alerts@company.com", []string{"alice@company.com"},
		e2etest.SimpleMessage("alerts@company.com", "ra-first"), 30*time.Second); err != nil || res.Code != 250 {
		t.Fatalf("first message: %d %v", res.Code, err)
	}
	var throttledEnd time.Time
	for deadline := time.Now().Add(30 * time.Second); throttledEnd.IsZero(); time.Sleep(20 * time.Millisecond) {
		for _, g := range r.fake.GraphRequests() {
			if g.Status == 429 {
				throttledEnd = g.End
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the 429 never happened")
		}
	}
	acc := []accepted{{subject: "ra-first"}}
	for i := range 8 {
		subject := fmt.Sprintf("ra-%d", i)
		p := r.relays[1+i%2]
		if res, err := e2etest.SendRawSMTP(p.addr, "alerts@company.com", []string{"alice@company.com"},
			e2etest.SimpleMessage("alerts@company.com", subject), 30*time.Second); err != nil || res.Code != 250 {
			t.Fatalf("%s: %d %v", subject, res.Code, err)
		}
		acc = append(acc, accepted{subject: subject})
	}
	r.waitAllDelivered(acc, time.Minute)
	floor := throttledEnd.Add(3 * time.Second)
	later := 0
	for _, g := range r.fake.GraphRequests() {
		if g.Start.After(throttledEnd) && strings.Contains(g.Path, "sendMail") {
			later++
			// 100ms covers the fake's and the relay's reading of the
			// clock on either side of the response.
			if g.Start.Before(floor.Add(-100 * time.Millisecond)) {
				t.Errorf("a request for %s started %v after the 429, before its 3s Retry-After", g.Mailbox, g.Start.Sub(throttledEnd))
			}
		}
	}
	if later < len(acc) {
		t.Errorf("%d sendMail requests after the 429; want at least %d", later, len(acc))
	}
}

// queueCLI runs "graphrelay queue ..." (the real binary) against a relay's
// configuration, as an admin on any host would.
func (r *clusterRig) queueCLI(p *relayProc, args ...string) (string, error) {
	out, err := exec.Command(r.bin, append(append([]string{"queue"}, args...), "--config", p.cfg)...).CombinedOutput()
	return string(out), err
}

func delivered(fake *graphtest.Server, subject string) bool {
	for _, d := range fake.Deliveries() {
		if d.Message.Subject == subject {
			return true
		}
	}
	return false
}

// TestClusterOperate: the queue commands see and change the cluster's
// queue from any relay's configuration, /readyz and "graphrelay check"
// report whether the cluster can store mail.
func TestClusterOperate(t *testing.T) {
	t.Parallel()
	r := newClusterRig(t, 2, graphtest.Config{})
	p0, p1 := r.relays[0], r.relays[1]
	send := func(p *relayProc, subject string) string {
		t.Helper()
		res, err := e2etest.SendRawSMTP(p.addr, "alerts@company.com", []string{"alice@company.com"}, e2etest.SimpleMessage("alerts@company.com", subject), 30*time.Second)
		if err != nil || res.Code != 250 {
			t.Fatalf("%s: %d %v", subject, res.Code, err)
		}
		return strings.TrimPrefix(res.Msg, "2.0.0 queued as ")
	}

	// A permanent refusal makes a dead letter; requeue sends it again.
	r.fake.FailGraph(graphtest.Fault{Mailbox: "alerts@company.com", Status: 400, Code: "ErrorInvalidRecipients"})
	dead := send(p0, "op-dead")
	e2etest.WaitFor(t, time.Minute, "the dead letter in queue failed", func() bool {
		out, _ := r.queueCLI(p1, "failed", "--json")
		return strings.Contains(out, dead) && strings.Contains(out, `"reason": "permanent"`)
	})
	if out, err := r.queueCLI(p1, "show", dead); err != nil || !strings.Contains(out, "ErrorInvalidRecipients") || !strings.Contains(out, "Subject: op-dead") {
		t.Errorf("queue show %s: %v\n%s", dead, err, out)
	}
	if out, err := r.queueCLI(p1, "requeue", dead); err != nil {
		t.Fatalf("queue requeue: %v\n%s", err, out)
	}
	e2etest.WaitFor(t, time.Minute, "the requeued message delivered", func() bool { return delivered(r.fake, "op-dead") })

	// A message waiting for a retry is listed, and delete removes it.
	r.fake.SetGraphOutage(&graphtest.Fault{Mailbox: "scans@company.com", Status: 503})
	res, err := e2etest.SendRawSMTP(p0.addr, "scans@company.com", []string{"alice@company.com"}, e2etest.SimpleMessage("scans@company.com", "op-deleted"), 30*time.Second)
	if err != nil || res.Code != 250 {
		t.Fatalf("op-deleted: %d %v", res.Code, err)
	}
	gone := strings.TrimPrefix(res.Msg, "2.0.0 queued as ")
	e2etest.WaitFor(t, time.Minute, "the deferred message in queue list", func() bool {
		out, _ := r.queueCLI(p1, "list", "--json")
		return strings.Contains(out, gone) && strings.Contains(out, "HTTP 503")
	})
	// Every relay's metrics show the cluster's queue, including mail
	// another relay accepted.
	e2etest.WaitFor(t, time.Minute, "relay1's metrics showing the message relay0 accepted", func() bool {
		return sample(p1.admin, `graphrelay_queue_depth{mailbox="scans@company.com"}`) >= 1
	})
	if out, err := r.queueCLI(p1, "delete", gone); err != nil {
		t.Fatalf("queue delete: %v\n%s", err, out)
	}
	if out, _ := r.queueCLI(p0, "list"); strings.Contains(out, gone) {
		t.Errorf("queue list still shows the deleted message:\n%s", out)
	}
	r.fake.SetGraphOutage(nil)
	// A message sent after the delete is delivered; the deleted one,
	// whose retry was due long before, never is.
	res, err = e2etest.SendRawSMTP(p0.addr, "scans@company.com", []string{"alice@company.com"}, e2etest.SimpleMessage("scans@company.com", "op-after"), 30*time.Second)
	if err != nil || res.Code != 250 {
		t.Fatalf("op-after: %d %v", res.Code, err)
	}
	e2etest.WaitFor(t, time.Minute, "op-after delivered", func() bool { return delivered(r.fake, "op-after") })
	time.Sleep(time.Second) // the deleted message's retry (at most retry_max, 400ms) is due by now
	if delivered(r.fake, "op-deleted") {
		t.Error("a deleted message was delivered")
	}

	// Ready while the cluster can store; "check" names the stream.
	readyz := func() int {
		resp, err := http.Get("http://" + p0.admin + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := readyz(); c != 200 {
		t.Errorf("/readyz = %d with the cluster up", c)
	}
	out, _ := exec.Command(r.bin, "check", "--config", p0.cfg).CombinedOutput()
	if !regexp.MustCompile(`(?m)^OK +cluster +connected to .*stream GRAPHRELAY_QUEUE R3`).Match(out) {
		t.Errorf("graphrelay check with the cluster up:\n%s", out)
	}
	// Two of three NATS servers lost: no quorum, so not ready.
	r.nats.Kill(r.nats.Nodes[1])
	r.nats.Kill(r.nats.Nodes[2])
	e2etest.WaitFor(t, time.Minute, "/readyz failing without a quorum", func() bool { return readyz() == 503 })
	out, _ = exec.Command(r.bin, "check", "--config", p0.cfg).CombinedOutput()
	if !regexp.MustCompile(`(?m)^FAIL +cluster `).Match(out) {
		t.Errorf("graphrelay check without a quorum:\n%s", out)
	}
	if res, err := e2etest.SendRawSMTP(p0.addr, "alerts@company.com", []string{"alice@company.com"},
		e2etest.SimpleMessage("alerts@company.com", "op-no-quorum"), 60*time.Second); err != nil || res.Code/100 != 4 {
		t.Errorf("a message without a quorum got %d %s %v; want 451 or 452, never 250", res.Code, res.Msg, err)
	}
}

// TestClusterMigrateLocalSpool: a host's local spool, with mail waiting
// for a retry and a dead letter, moves into the cluster with "graphrelay
// queue migrate"; the cluster's relays deliver the waiting mail and keep
// the dead letter for an admin.
func TestClusterMigrateLocalSpool(t *testing.T) {
	t.Parallel()
	r := newClusterRig(t, 2, graphtest.Config{})
	// A host on the local spool, sharing the fake tenant.
	old := &relayProc{name: "oldhost", addr: loopbackAddr(t), admin: loopbackAddr(t),
		cfg: filepath.Join(r.dir, "oldhost.yaml"), log: filepath.Join(r.dir, "oldhost.log")}
	b, _ := os.ReadFile(r.relays[0].cfg)
	text := strings.Replace(string(b), "backend: jetstream", "backend: local", 1)
	text = strings.Replace(text, r.relays[0].addr, old.addr, 1)
	text = strings.Replace(text, r.relays[0].admin, old.admin, 1)
	spool := filepath.Join(r.dir, "oldhost-spool")
	text = strings.Replace(text, filepath.Join(r.dir, "relay0-spool"), spool, 1)
	os.WriteFile(old.cfg, []byte(text), 0o600)

	r.fake.FailGraph(graphtest.Fault{Mailbox: "scans@company.com", Status: 400, Code: "ErrorInvalidRecipients"})
	r.start(old)
	res, err := e2etest.SendRawSMTP(old.addr, "scans@company.com", []string{"alice@company.com"}, e2etest.SimpleMessage("scans@company.com", "mig-dead"), 30*time.Second)
	if err != nil || res.Code != 250 {
		t.Fatalf("mig-dead: %d %v", res.Code, err)
	}
	deadID := strings.TrimPrefix(res.Msg, "2.0.0 queued as ")
	e2etest.WaitFor(t, time.Minute, "the dead letter on the old host", func() bool {
		out, _ := exec.Command(r.bin, "queue", "failed", "--dir", spool).CombinedOutput()
		return strings.Contains(string(out), deadID)
	})
	// The dead letter's notice leaves before the outage, so that exactly
	// the five messages below wait in the old spool besides it.
	e2etest.WaitFor(t, time.Minute, "nothing waiting on the old host (the dead letter's notice sent)", func() bool {
		out, _ := exec.Command(r.bin, "queue", "list", "--dir", spool).CombinedOutput()
		return strings.Contains(string(out), "\n0 message(s) waiting")
	})
	r.fake.SetGraphOutage(&graphtest.Fault{Mailbox: "alerts@company.com", Status: 503})
	var waiting []accepted
	for i := range 5 {
		subject := fmt.Sprintf("mig-%d", i)
		res, err := e2etest.SendRawSMTP(old.addr, "alerts@company.com", []string{"alice@company.com"}, e2etest.SimpleMessage("alerts@company.com", subject), 30*time.Second)
		if err != nil || res.Code != 250 {
			t.Fatalf("%s: %d %v", subject, res.Code, err)
		}
		waiting = append(waiting, accepted{subject, strings.TrimPrefix(res.Msg, "2.0.0 queued as ")})
	}
	old.cmd.Process.Signal(syscall.SIGTERM)
	<-old.done
	old.cmd = nil

	out, err := exec.Command(r.bin, "queue", "migrate", "--dir", spool, "--config", r.relays[0].cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "moved 6 message(s)") {
		t.Fatalf("queue migrate: %v\n%s", err, out)
	}
	if out, _ := exec.Command(r.bin, "queue", "list", "--dir", spool).CombinedOutput(); strings.Contains(string(out), waiting[0].id) {
		t.Errorf("the old spool still lists migrated mail:\n%s", out)
	}
	if failed, _ := r.queueCLI(r.relays[1], "failed"); !strings.Contains(failed, deadID) {
		t.Errorf("the dead letter is not among the cluster's dead letters:\n%s", failed)
	}
	r.fake.SetGraphOutage(nil)
	r.waitAllDelivered(waiting, time.Minute)
}

// sample reads one series from a relay's /metrics; -1 when absent.
func sample(addr, series string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}
