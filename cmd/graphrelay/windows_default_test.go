//go:build windows

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// TestWindowsConfigWithoutQueueDir is the smallest Windows configuration,
// written as Notepad writes it (CRLF) in a folder whose name has a space:
// it names no delivery.mode and no queue.dir, and the relay still runs in
// queue mode with its spool in %ProgramData%\graphrelay\spool, where a
// message is spooled, acknowledged and delivered.
func TestWindowsConfigWithoutQueueDir(t *testing.T) {
	programData := filepath.Join(t.TempDir(), "Program Data")
	t.Setenv("ProgramData", programData)
	fake := newQueueFake(t, graphtest.Config{})
	cfgDir := filepath.Join(programData, "graphrelay")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`smtp:
  listeners:
    - name: test
      address: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
graph:
  tenant_id: %s
  client_id: %s
  authority_url: %s
  graph_url: %s
  client_secret: %q
mailboxes:
  - alerts@company.com
default_mailbox: alerts@company.com
`, fake.TenantID(), fake.ClientID(), fake.AuthorityURL(), fake.GraphURL(), queueSecret)
	cfgFile := filepath.Join(cfgDir, "graphrelay.yaml")
	if err := os.WriteFile(cfgFile, []byte(strings.ReplaceAll(yaml, "\n", "\r\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantDir := filepath.Join(programData, "graphrelay", "spool")
	if cfg.Delivery.Mode != config.ModeQueue || cfg.Queue.Dir != wantDir {
		t.Fatalf("mode %q, queue.dir %q; want queue, %q", cfg.Delivery.Mode, cfg.Queue.Dir, wantDir)
	}
	r := startRelay(t, cfg, fake)
	rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"alice@company.com"}, simpleMessage("alerts@company.com", "spooled on Windows"))
	if rep.code != 250 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}
	if got := fake.WaitDeliveries(1, 10*time.Second); len(got) != 1 || got[0].Message.Subject != "spooled on Windows" {
		t.Fatalf("deliveries: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(wantDir, "lock")); err != nil {
		t.Errorf("the spool is not in %s: %v", wantDir, err)
	}
}
