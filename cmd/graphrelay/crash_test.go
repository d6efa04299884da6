package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// crashKills is the number of kill -9s; the issue asks for at least 20.
const crashKills = 20

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
	dir := t.TempDir()
	bin := filepath.Join(dir, "graphrelay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// A little Graph latency widens the window in which a kill catches a
	// request in flight, which is the case the test is about.
	fake := newQueueFake(t, graphtest.Config{Latency: 3 * time.Millisecond})
	caFile := filepath.Join(dir, "fake-ca.pem")
	os.WriteFile(caFile, fake.CAPEM(), 0o644)
	addr := freeAddr(t)
	spool := filepath.Join(dir, "spool")
	cfgFile := filepath.Join(dir, "graphrelay.yaml")
	os.WriteFile(cfgFile, []byte(fmt.Sprintf(`log:
  level: info
smtp:
  listeners:
    - name: crash
      address: %s
  shutdown_timeout: 5s
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
`, addr, fake.TenantID(), fake.ClientID(), fake.AuthorityURL(), fake.GraphURL(), queueSecret, caFile, spool)), 0o600)
	logPath := filepath.Join(dir, "daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	start := func() *daemon {
		t.Helper()
		for try := 0; ; try++ {
			d := &daemon{cmd: exec.Command(bin, "serve", "--config", cfgFile), done: make(chan error, 1)}
			d.cmd.Dir = dir
			d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
			if err := d.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { d.done <- d.cmd.Wait() }()
			if waitListening(addr, d.done, 15*time.Second) {
				return d
			}
			d.cmd.Process.Kill()
			<-d.done
			if try == 20 {
				t.Fatalf("the daemon did not come up on %s; log:\n%s", addr, tail(logPath))
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
			for i := range maxPerClient {
				select {
				case <-stop:
					return
				default:
				}
				subject := fmt.Sprintf("crash-%d-%d", c, i)
				res, err := sendRawSMTP(addr, from, []string{"alice@company.com"}, simpleMessage(from, subject), 5*time.Second)
				mu.Lock()
				switch {
				case err == nil && res.code == 250:
					id := strings.TrimPrefix(res.msg, "2.0.0 queued as ")
					accepted = append(accepted, sent{subject, id})
				case err == nil:
					refused++
				default:
					broken++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // the daemon is down; wait for the restart
				}
			}
		}()
	}

	d := start()
	for k := range crashKills {
		time.Sleep(time.Duration(100+rand.IntN(300)) * time.Millisecond)
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", k+1, err)
		}
		<-d.done
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
	// Everything accepted arrives, from the daemon left running. The
	// deadline only guards against a hang.
	deadline := time.Now().Add(120 * time.Second)
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
			t.Fatalf("%d of %d accepted messages never reached Graph: %v\nlog tail:\n%s", len(ms), len(want), ms, tail(logPath))
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
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d.done; err != nil {
		t.Errorf("final daemon exit: %v", err)
	}
	logs, _ := os.ReadFile(logPath)
	interrupted := idsOnLines(string(logs), "an attempt was interrupted")
	ambiguous := idsOnLines(string(logs), "possible duplicate")
	dups, unexplained := 0, 0
	for s, n := range got {
		id, ok := want[s]
		if n < 2 {
			continue
		}
		dups += n - 1
		if ok && !interrupted[id] && !ambiguous[id] {
			unexplained++
			t.Errorf("%s (%s) reached Graph %d times without an interrupted or ambiguous attempt", s, id, n)
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
		crashKills, len(want), refused, broken, len(fake.Deliveries()), dups, len(interrupted), len(ambiguous), unexplained)
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

// waitListening waits until addr accepts connections, or the process
// exits.
func waitListening(addr string, done chan error, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

var idRE = regexp.MustCompile(`\bid=(\w+)`)

// idsOnLines returns the queue ids on log lines containing marker.
func idsOnLines(logs, marker string) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, marker) {
			if m := idRE.FindStringSubmatch(l); m != nil {
				out[m[1]] = true
			}
		}
	}
	return out
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}
