//go:build !windows

package main

import (
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// The reproduction: a message waits in a spool that belongs to the
// service user, and root runs "queue retry". graphrelay refuses, names the
// command to run instead, and leaves no root-owned file behind; reading
// the queue as root still works.
func TestQueueChangeAsRootRefusedInForeignSpool(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root, as the reproduction does (sudo graphrelay queue retry)")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody to own the spool")
	}
	fake := e2etest.NewFake(t, graphtest.Config{})
	fake.SetGraphOutage(&graphtest.Fault{Status: 503})
	cfg := queueConfig(t, fake, "alerts@company.com")
	r := startRelay(t, cfg, fake)
	mustQueue(t, r.addr, "alerts@company.com", "waiting")
	e2etest.WaitFor(t, time.Minute, "a failed attempt", func() bool { return len(fake.GraphRequests()) >= 1 })
	r.app.Close() // the daemon is stopped, as in the reproduction

	// The spool as the service user's: chown -R nobody.
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	if err := filepath.WalkDir(cfg.Queue.Dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runQueueCmd(t, "list", "--dir", cfg.Queue.Dir)
	id := regexp.MustCompile(`(?m)^(\S{20,})\s`).FindStringSubmatch(out)
	if code != 0 || id == nil {
		t.Fatalf("queue list as root (%d):\n%s", code, out)
	}
	for _, sub := range []string{"retry", "requeue", "delete"} {
		code, _, errOut := runQueueCmd(t, sub, id[1], "--dir", cfg.Queue.Dir)
		want := "sudo -u nobody graphrelay queue " + sub + " " + id[1] + " --dir " + cfg.Queue.Dir
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("queue %s as root = %d: %s\nwant the command %q", sub, code, errOut, want)
		}
	}
	if err := filepath.WalkDir(cfg.Queue.Dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
			t.Errorf("%s is owned by %d after the refused commands", p, st.Uid)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
