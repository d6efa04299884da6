package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// crashKills is the number of kill -9s; the issue asks for at least 20.
// Under Wine each restart costs a second more, so there are fewer.
const crashKills, wineCrashKills = 20, 10

// daemon is one run of the real binary.
type daemon struct {
	cmd  *exec.Cmd
	done chan error
}

// TestQueueCrashKill9 runs the real binary in queue mode, sends from
// several clients at once, and kill -9s it at random moments, restarting
// it each time. Every message that got a 250 must reach Graph at least
// once; a message may reach it twice only if an attempt for it was in
// flight at a kill (logged as interrupted at the next start) or had an
// ambiguous outcome.
func TestQueueCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it 20 times")
	}
	t.Parallel()
	// A folder name with a space, as under "Program Files" and
	// "ProgramData" on Windows.
	dir := filepath.Join(t.TempDir(), "graph relay")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	bin := buildDaemon(t, dir)
	kills := crashKills
	if bin.windows() {
		kills = wineCrashKills
	}
	// A little Graph latency widens the window in which a kill catches a
	// request in flight, which is the case the test is about.
	fake := e2etest.NewFake(t, graphtest.Config{Latency: 3 * time.Millisecond})
	caFile := filepath.Join(dir, "fake-ca.pem")
	os.WriteFile(caFile, fake.CAPEM(), 0o644)
	addr := freeAddr(t)
	spool := filepath.Join(dir, "spool")
	cfgFile := filepath.Join(dir, "graphrelay.yaml")
	cfg := fmt.Sprintf(`log:
  level: info
smtp:
  listeners:
    - name: crash
      address: %s
  shutdown_timeout: 5s
admin:
  listen: 127.0.0.1:0
graph:
  tenant_id: %s
  client_id: %s
  authority_url: %s
  graph_url: %s
  client_secret: %q
  ca_file: %s
  timeout: 10s
delivery:
  mode: queue
queue:
  dir: %s
  retry_initial: 100ms
  retry_max: 400ms
  max_age: 1h
mailboxes:
  - alerts@company.com
  - scans@company.com
default_mailbox: alerts@company.com
`, addr, fake.TenantID(), fake.ClientID(), fake.AuthorityURL(), fake.GraphURL(), e2etest.Secret,
		bin.hostPath(caFile), bin.hostPath(spool))
	if bin.windows() {
		// Notepad's line endings, as a Windows admin's file has them.
		cfg = strings.ReplaceAll(cfg, "\n", "\r\n")
	}
	os.WriteFile(cfgFile, []byte(cfg), 0o600)
	logPath := filepath.Join(dir, "daemon.log")
	// O_APPEND: every daemon writes at the end, whatever file position
	// the one killed before it left behind (Wine keeps its own).
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	start := func() *daemon {
		t.Helper()
		for try := 0; ; try++ {
			d := &daemon{cmd: bin.command("serve", "--config", bin.hostPath(cfgFile)), done: make(chan error, 1)}
			d.cmd.Dir = dir
			d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
			if err := d.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { d.done <- d.cmd.Wait() }()
			if e2etest.WaitListening(addr, d.done, time.Minute) {
				return d
			}
			d.cmd.Process.Kill()
			<-d.done
			if try == 20 {
				t.Fatalf("the daemon did not come up on %s; log:\n%s", addr, e2etest.Tail(logPath))
			}
			time.Sleep(100 * time.Millisecond) // the port may still be taken briefly
		}
	}

	// Clients send unique subjects until told to stop, bounded in count.
	type sent struct {
		subject, id string
	}
	var mu sync.Mutex
	var accepted []sent
	refused, broken := 0, 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const clients, maxPerClient = 4, 400
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := []string{"alerts@company.com", "scans@company.com"}[c%2]
			// A try that finds the daemon down does not count: under Wine a
			// restart takes long enough to use up every client's budget.
			// Every try has its own subject all the same, because a try cut
			// short by a kill may have been spooled without its 250.
			for i, try := 0, 0; i < maxPerClient; try++ {
				select {
				case <-stop:
					return
				default:
				}
				subject := fmt.Sprintf("crash-%d-%d", c, try)
				res, err := e2etest.SendRawSMTP(addr, from, []string{"alice@company.com"}, e2etest.SimpleMessage(from, subject), 5*time.Second)
				mu.Lock()
				switch {
				case err == nil && res.Code == 250:
					id := strings.TrimPrefix(res.Msg, "2.0.0 queued as ")
					accepted = append(accepted, sent{subject, id})
				case err == nil:
					refused++
				default:
					broken++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // the daemon is down; wait for the restart
					continue
				}
				i++
			}
		}()
	}

	d := start()
	for k := range kills {
		up := time.Duration(100+rand.IntN(300)) * time.Millisecond
		if bin.windows() {
			up *= 4 // Wine runs the daemon several times slower
		}
		time.Sleep(up)
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v; log tail:\n%s", k+1, err, e2etest.Tail(logPath))
		}
		<-d.done
		if bin.windows() {
			waitClosed(t, addr)
		}
		d = start()
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	want := map[string]string{}
	for _, s := range accepted {
		want[s.subject] = s.id
	}
	mu.Unlock()
	// Everything accepted arrives, from the daemon left running. Under
	// Wine, requests of killed daemons can hold the fake's per-mailbox
	// slots, so the drain meets 429s and Retry-After floors and takes
	// longer. The deadline only guards against a hang: it is how long to
	// wait before calling a message lost.
	wait := 120 * time.Second
	if bin.windows() {
		wait = 180 * time.Second
	}
	deadline := time.Now().Add(wait)
	var got map[string]int
	for {
		got = map[string]int{}
		for _, dl := range fake.Deliveries() {
			got[dl.Message.Subject]++
		}
		missing := 0
		for s := range want {
			if got[s] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			var ms []string
			for s, id := range want {
				if got[s] == 0 {
					ms = append(ms, s+" ("+id+")")
				}
			}
			sort.Strings(ms)
			t.Fatalf("%d of %d accepted messages never reached Graph: %v\nlog tail:\n%s", len(ms), len(want), ms, e2etest.Tail(logPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Messages spooled just before a kill, whose 250 never reached the
	// client, wait for their deliberately delayed post-crash retry; give
	// the spool a bounded time to drain before stopping the last daemon.
	for drain := time.Now().Add(30 * time.Second); time.Now().Before(drain); time.Sleep(200 * time.Millisecond) {
		if entries, _ := os.ReadDir(filepath.Join(spool, "queue")); len(entries) == 0 {
			break
		}
	}
	// Wine turns SIGINT into the console's Ctrl+C, which serve handles
	// like SIGTERM; it does not translate SIGTERM.
	stopSig := syscall.SIGTERM
	if bin.windows() {
		stopSig = syscall.SIGINT
	}
	d.cmd.Process.Signal(stopSig)
	if err := <-d.done; err != nil {
		t.Errorf("final daemon exit: %v", err)
	}
	logs, _ := os.ReadFile(logPath)
	interrupted := e2etest.IDsOnLines(string(logs), "an attempt was interrupted")
	ambiguous := e2etest.IDsOnLines(string(logs), "possible duplicate")
	dups, unexplained := 0, 0
	for s, n := range got {
		id, ok := want[s]
		if n < 2 {
			continue
		}
		dups += n - 1
		if ok && !interrupted[id] && !ambiguous[id] {
			unexplained++
			var crids []string
			for _, dl := range fake.Deliveries() {
				if dl.Message.Subject == s {
					crids = append(crids, dl.ClientRequestID)
				}
			}
			t.Errorf("%s (%s) reached Graph %d times (client-request-id %v) without an interrupted or ambiguous attempt; its log lines:\n%s",
				s, id, n, crids, linesWith(string(logs), id))
		}
	}
	// No acknowledged message may still be waiting; a message that never
	// got its 250 may (the client was told nothing, and it will still be
	// delivered at its next try).
	acceptedIDs := map[string]bool{}
	for _, id := range want {
		acceptedIDs[id] = true
	}
	pending := 0
	entries, _ := os.ReadDir(filepath.Join(spool, "queue"))
	for _, e := range entries {
		id := strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".msg"), ".json")
		if acceptedIDs[id] {
			t.Errorf("acknowledged message %s is still spooled after it was delivered", id)
		} else {
			pending++
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(spool, "tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ holds %d entries", len(tmp))
	}
	t.Logf("%d spool entries of messages that never got a 250 still wait for their next try", pending)
	t.Logf("%d kills; %d messages accepted (250), %d refused, %d broken by a kill; %d delivered; "+
		"%d duplicate deliveries (%d attempts interrupted by kills, %d ambiguous outcomes logged), %d unexplained",
		kills, len(want), refused, broken, len(fake.Deliveries()), dups, len(interrupted), len(ambiguous), unexplained)
	if len(want) < 100 {
		t.Errorf("only %d messages accepted; the test exercised too little", len(want))
	}
}

// freeAddr picks a loopback port that is free now; the daemon binds it on
// every restart.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitClosed waits until nothing accepts connections on addr. Under Wine
// the dead process's sockets, files and locks belong to wineserver until
// it notices the death, tens of milliseconds later; a daemon started
// before that finds the port and the spool taken, and waitListening would
// mistake the dead one's socket for the new daemon's.
func waitClosed(t *testing.T, addr string) {
	t.Helper()
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s still accepts connections after the daemon was killed", addr)
}

// linesWith returns the log lines that mention s.
func linesWith(logs, s string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
