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
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// TestWindowsConfigWithoutQueueDir is the smallest Windows configuration,
// written as Notepad writes it (CRLF) in a folder whose name has a space:
// it names no delivery.mode and no queue.dir, and loads in queue mode with
// the spool in the ProgramData known folder, graphrelay\spool. The relay
// then runs on it, moved to a temporary folder so that the test does not
// share C:\ProgramData\graphrelay with an installed service (.ci/windows.sh
// runs the installed service on the real default), and a message is
// spooled, acknowledged and delivered.
func TestWindowsConfigWithoutQueueDir(t *testing.T) {
	programData := filepath.Join(t.TempDir(), "Program Data")
	fake := e2etest.NewFake(t, graphtest.Config{})
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
`, fake.TenantID(), fake.ClientID(), fake.AuthorityURL(), fake.GraphURL(), e2etest.Secret)
	cfgFile := filepath.Join(cfgDir, "graphrelay.yaml")
	if err := os.WriteFile(cfgFile, []byte(strings.ReplaceAll(yaml, "\n", "\r\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(config.ProgramData(), "graphrelay", "spool"); cfg.Delivery.Mode != config.ModeQueue || cfg.Queue.Dir != want {
		t.Fatalf("mode %q, queue.dir %q; want queue, %q", cfg.Delivery.Mode, cfg.Queue.Dir, want)
	}
	cfg.Queue.Dir = filepath.Join(programData, "graphrelay", "spool")
	wantDir := cfg.Queue.Dir
	r := startRelay(t, cfg, fake)
	rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"alice@company.com"}, e2etest.SimpleMessage("alerts@company.com", "spooled on Windows"))
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
