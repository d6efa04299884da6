//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
	"github.com/graphrelay/graphrelay/queue"
)

// spoolLeftovers lists the message files in the spool, and any non-empty
// file in tmp/ or spare/, unless they are exactly the accepted messages.
func spoolLeftovers(t *testing.T, dir string, accepted int) []string {
	t.Helper()
	var out []string
	msgs := 0
	for _, area := range []string{"tmp", "queue", "spare"} {
		entries, err := os.ReadDir(filepath.Join(dir, area))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			fi, _ := e.Info()
			switch {
			case area == "queue" && strings.HasSuffix(e.Name(), ".msg"):
				msgs++
			case area == "queue" && (strings.HasSuffix(e.Name(), ".json") || strings.HasSuffix(e.Name(), ".json.tmp")):
				continue // a waiting message's record, or its update under way
			case area == "spare" && fi != nil && fi.Size() == 0:
				continue // an empty file kept for reuse
			}
			out = append(out, area+"/"+e.Name())
		}
	}
	if msgs == accepted && len(out) == accepted {
		return nil
	}
	return out
}

// bigMessage is a message of about n bytes.
func bigMessage(from string, n int) string {
	return e2etest.SimpleMessage(from, "big") + strings.Repeat(strings.Repeat("z", 76)+"\r\n", n/78)
}

// diskFullFS is the real filesystem until its byte budget runs out; then
// every write fails with ENOSPC, as on a full disk.
type diskFullFS struct {
	queue.OSFS
	mu     sync.Mutex
	budget int64
}

func (f *diskFullFS) Create(path string) (queue.File, error) {
	file, err := f.OSFS.Create(path)
	if err != nil {
		return nil, err
	}
	return &budgetFile{File: file, fs: f, path: path}, nil
}

func (f *diskFullFS) Reuse(path string, truncate bool) (queue.File, error) {
	file, err := f.OSFS.Reuse(path, truncate)
	if err != nil {
		return nil, err
	}
	return &budgetFile{File: file, fs: f, path: path}, nil
}

type budgetFile struct {
	queue.File
	fs   *diskFullFS
	path string
}

func (b *budgetFile) Write(p []byte) (int, error) {
	b.fs.mu.Lock()
	defer b.fs.mu.Unlock()
	if int64(len(p)) > b.fs.budget {
		n, _ := b.File.Write(p[:b.fs.budget])
		b.fs.budget = 0
		return n, &os.PathError{Op: "write", Path: b.path, Err: syscall.ENOSPC}
	}
	b.fs.budget -= int64(len(p))
	return b.File.Write(p)
}

// TestQueueSpoolDiskFullInjected: the disk fills up in the middle of a
// message (an injected ENOSPC, which any machine can run): 452 4.3.1, and
// nothing of the message is left.
func TestQueueSpoolDiskFullInjected(t *testing.T) {
	t.Parallel()
	fsys := &diskFullFS{budget: 1 << 30}
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	r := startRelayOnFS(t, cfg, fake, fsys)
	fsys.mu.Lock()
	fsys.budget = 20_000
	fsys.mu.Unlock()
	rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"alice@company.com"}, bigMessage("alerts@company.com", 100_000))
	if rep.code != 452 || !strings.HasPrefix(rep.msg, "4.3.1") {
		t.Errorf("reply = %d %s, want 452 4.3.1", rep.code, rep.msg)
	}
	if left := spoolLeftovers(t, cfg.Queue.Dir, 0); left != nil {
		t.Errorf("partial files left: %v", left)
	}
	if !strings.Contains(r.logs.String(), "filesystem holding queue.dir is full") {
		t.Errorf("the log does not say the disk is full:%s", r.logs)
	}
	fsys.mu.Lock()
	fsys.budget = 1 << 30
	fsys.mu.Unlock()
	mustQueue(t, r.addr, "alerts@company.com", "after space was freed")
	if ds := fake.WaitDeliveries(1, 10*time.Second); len(ds) != 1 {
		t.Error("not delivered after space was freed")
	}
}

// TestQueueSpoolDiskFullTmpfs is the same on a real, small tmpfs. It needs
// root (CAP_SYS_ADMIN) to mount, and skips otherwise.
func TestQueueSpoolDiskFullTmpfs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestQueueSpoolDiskFullInjected covers a full disk", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	cfg.Queue.Dir = dir
	r := startRelay(t, cfg, fake)
	rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"alice@company.com"}, bigMessage("alerts@company.com", 400_000))
	if rep.code != 452 || !strings.HasPrefix(rep.msg, "4.3.1") {
		t.Errorf("reply = %d %s, want 452 4.3.1", rep.code, rep.msg)
	}
	if left := spoolLeftovers(t, dir, 0); left != nil {
		t.Errorf("partial files left on the full tmpfs: %v", left)
	}
	mustQueue(t, r.addr, "alerts@company.com", "small one fits")
	if ds := fake.WaitDeliveries(1, 10*time.Second); len(ds) != 1 {
		t.Error("a small message was not delivered after the full-disk refusal")
	}
}

// TestQueueSpoolQuota: over queue.max_messages or queue.max_bytes the
// client gets 452 4.3.1 and keeps its message.
func TestQueueSpoolQuota(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	cfg.Queue.MaxMessages = 2
	cfg.Queue.MaxBytes = 50_000
	r := startRelay(t, cfg, fake)
	fake.SetGraphOutage(&graphtest.Fault{Status: 503}) // nothing leaves
	mustQueue(t, r.addr, "alerts@company.com", "q1")
	rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"alice@company.com"}, bigMessage("alerts@company.com", 60_000))
	if rep.code != 452 || !strings.HasPrefix(rep.msg, "4.3.1") {
		t.Errorf("over max_bytes: %d %s, want 452 4.3.1", rep.code, rep.msg)
	}
	mustQueue(t, r.addr, "alerts@company.com", "q2")
	rep = sendNetSMTP(t, r.addr, "alerts@company.com", []string{"alice@company.com"}, e2etest.SimpleMessage("alerts@company.com", "q3"))
	if rep.code != 452 || !strings.HasPrefix(rep.msg, "4.3.1") {
		t.Errorf("over max_messages: %d %s, want 452 4.3.1", rep.code, rep.msg)
	}
	if left := spoolLeftovers(t, cfg.Queue.Dir, 2); left != nil {
		t.Errorf("spool holds %v; want exactly the two accepted messages", left)
	}
	if !strings.Contains(r.logs.String(), "spool quota") {
		t.Errorf("the quota is not named in the log")
	}
	fake.SetGraphOutage(nil)
	if ds := fake.WaitDeliveries(2, 10*time.Second); len(ds) != 2 {
		t.Fatalf("%d of 2 delivered", len(ds))
	}
	e2etest.WaitFor(t, time.Minute, "quota freed", func() bool {
		code, _ := smtpSend(r.addr, "alerts@company.com", []string{"alice@company.com"}, e2etest.SimpleMessage("alerts@company.com", "q4"))
		return code == 250
	})
}

const unprivilegedEnv = "GRAPHRELAY_TEST_UNPRIVILEGED"

// TestQueueSpoolPermissionDenied: the spool directory stops being
// writable (an admin's chown or chmod): 451, and nothing is left. Root
// ignores file modes, so as root the test runs itself again as the user
// nobody; where that is impossible it skips and says so.
func TestQueueSpoolPermissionDenied(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		if os.Getenv(unprivilegedEnv) != "" {
			t.Fatal("still root after dropping privileges")
		}
		rerunUnprivileged(t)
		return
	}
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	r := startRelay(t, cfg, fake)
	// queue/ is where every message must be renamed into; tmp/ alone is
	// not enough, because a message is written into a spare file when
	// spare/ has one, which the running daemon keeps stocked.
	dir := filepath.Join(cfg.Queue.Dir, "queue")
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if err := os.Mkdir(filepath.Join(dir, "probe"), 0o700); err == nil {
		t.Skip("chmod does not deny this user (CAP_DAC_OVERRIDE?); cannot produce a permission error")
	}
	rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"alice@company.com"}, e2etest.SimpleMessage("alerts@company.com", "denied"))
	if rep.code != 451 || !strings.HasPrefix(rep.msg, "4.3.0") {
		t.Errorf("reply = %d %s, want 451 4.3.0", rep.code, rep.msg)
	}
	if left := spoolLeftovers(t, cfg.Queue.Dir, 0); left != nil {
		t.Errorf("partial files left: %v", left)
	}
	if !strings.Contains(r.logs.String(), "may not write to queue.dir") {
		t.Errorf("the log does not name the permission problem:%s", r.logs)
	}
	os.Chmod(dir, 0o700)
	mustQueue(t, r.addr, "alerts@company.com", "writable again")
	if ds := fake.WaitDeliveries(1, 10*time.Second); len(ds) != 1 {
		t.Error("not delivered once the spool was writable again")
	}
}

// rerunUnprivileged runs TestQueueSpoolPermissionDenied in a copy of this
// test binary as uid/gid 65534.
func rerunUnprivileged(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		os.Chmod(d, 0o755)
	}
	bin := filepath.Join(base, "graphrelay.test")
	if err := copyFile(os.Args[0], bin, 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(base, "home")
	os.Mkdir(home, 0o777)
	os.Chmod(home, 0o777)
	cmd := exec.Command(bin, "-test.run=^TestQueueSpoolPermissionDenied$", "-test.v", "-test.count=1")
	cmd.Dir = home
	cmd.Env = append(os.Environ(), unprivilegedEnv+"=1", "TMPDIR="+home, "HOME="+home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "--- ") {
		t.Skipf("cannot run the test as an unprivileged user (%v); as root, chmod cannot deny writes", err)
	}
	t.Logf("as uid 65534:\n%s", out)
	switch {
	case strings.Contains(string(out), "--- SKIP: TestQueueSpoolPermissionDenied"):
		t.Skip("skipped as uid 65534")
	case err != nil || !strings.Contains(string(out), "--- PASS: TestQueueSpoolPermissionDenied"):
		t.Fatalf("as uid 65534: %v", err)
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}
