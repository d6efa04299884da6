package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// TestRetryAfterFloorSurvivesRestart runs the real binary: Graph answers
// a message for busy@ with 429 and Retry-After: 20, three more messages
// for busy@ wait, and the daemon is stopped (SIGTERM) or killed (kill -9)
// and started again. From the fake's own request times, no request for
// busy@ may leave before the 429 plus 20 seconds, while free@'s mail goes
// out at once after the restart.
func TestRetryAfterFloorSurvivesRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary and waits out a 20 s Retry-After")
	}
	bin := e2etest.Binary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			floorAcrossRestart(t, bin, sig)
		})
	}
}

func floorAcrossRestart(t *testing.T, bin string, sig syscall.Signal) {
	const retryAfter = 20 * time.Second
	dir := t.TempDir()
	fake := e2etest.NewFake(t, graphtest.Config{})
	caFile := filepath.Join(dir, "fake-ca.pem")
	os.WriteFile(caFile, fake.CAPEM(), 0o644)
	addr := freeAddr(t)
	cfgFile := filepath.Join(dir, "graphrelay.yaml")
	os.WriteFile(cfgFile, []byte(fmt.Sprintf(`log:
  level: info
admin:
  listen: 127.0.0.1:0
smtp:
  listeners:
    - name: floors
      address: %s
graph:
  tenant_id: %s
  client_id: %s
  authority_url: %s
  graph_url: %s
  client_secret: %q
  ca_file: %s
delivery:
  mode: queue
queue:
  dir: %s
  retry_initial: 100ms
  retry_max: 1m # above the Retry-After, which is capped at retry_max
mailboxes:
  - busy@company.com
  - free@company.com
default_mailbox: free@company.com
`, addr, fake.TenantID(), fake.ClientID(), fake.AuthorityURL(), fake.GraphURL(), e2etest.Secret, caFile, filepath.Join(dir, "spool"))), 0o600)
	logPath := filepath.Join(dir, "daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	start := func() *daemon {
		d := &daemon{cmd: exec.Command(bin, "serve", "--config", cfgFile), done: make(chan error, 1)}
		d.cmd.Dir = dir
		d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
		if err := d.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { d.done <- d.cmd.Wait() }()
		if !e2etest.WaitListening(addr, d.done, time.Minute) {
			d.cmd.Process.Kill()
			t.Fatalf("the daemon did not come up; log:\n%s", e2etest.Tail(logPath))
		}
		return d
	}
	send := func(from, subject string) {
		t.Helper()
		res, err := e2etest.SendRawSMTP(addr, from, []string{"alice@company.com"}, e2etest.SimpleMessage(from, subject), 10*time.Second)
		if err != nil || res.Code != 250 {
			t.Fatalf("%s: %+v %v", subject, res, err)
		}
	}

	d := start()
	fake.FailGraph(graphtest.Fault{Mailbox: "busy@company.com", Status: 429, RetryAfter: "20"})
	send("busy@company.com", "throttled")
	var throttledAt time.Time
	e2etest.WaitFor(t, time.Minute, "the 429", func() bool {
		for _, r := range fake.GraphRequests() {
			if r.Status == 429 {
				throttledAt = r.End
				return true
			}
		}
		return false
	})
	floor := throttledAt.Add(retryAfter)
	for i := range 3 {
		send("busy@company.com", fmt.Sprintf("waiting %d", i))
	}
	// The floor is on disk before the attempt's outcome is logged.
	e2etest.WaitFor(t, time.Minute, "the deferred line", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "msg=deferred")
	})
	d.cmd.Process.Signal(sig)
	<-d.done

	d = start()
	defer func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		<-d.done
	}()
	send("free@company.com", "free after restart")
	e2etest.WaitFor(t, time.Minute, "free@'s delivery", func() bool {
		for _, dl := range fake.Deliveries() {
			if dl.Message.Subject == "free after restart" {
				return true
			}
		}
		return false
	})
	if time.Now().After(floor) {
		t.Logf("the machine is slow: the restart ended after the floor, so this run shows little")
	}
	e2etest.WaitFor(t, retryAfter+20*time.Second, "busy@'s four messages", func() bool {
		n := 0
		for _, dl := range fake.Deliveries() {
			if strings.EqualFold(dl.Mailbox, "busy@company.com") {
				n++
			}
		}
		return n >= 4
	})
	early := 0
	for _, r := range fake.GraphRequests() {
		if strings.EqualFold(r.Mailbox, "busy@company.com") && r.Status != 429 && r.Start.Before(floor) {
			early++
			t.Errorf("a request for busy@ left %s before the Retry-After floor", floor.Sub(r.Start))
		}
	}
	if !strings.Contains(e2etest.Tail(logPath), "still throttled by Graph's Retry-After") {
		t.Errorf("the restarted daemon did not log the floor it loaded:\n%s", e2etest.Tail(logPath))
	}
}
