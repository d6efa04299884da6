package queue

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func newTestSpool(t *testing.T, fsys FS) *Spool {
	t.Helper()
	s, err := openSpool(t.TempDir(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func recordFor(id string) func(int64) *Record {
	return func(size int64) *Record {
		env := testEnv("alerts@example.com", "printer@example.com")
		env.ID = id
		env.Size = size
		return &Record{Version: recordVersion, Envelope: *env, NextTry: time.Now(), Attempts: []Attempt{}}
	}
}

func TestSpoolCreateWritesMessageAndRecord(t *testing.T) {
	s := newTestSpool(t, nil)
	id := testEnv("a@example.com", "").ID
	msg := testMessage("hello")
	size, err := s.create(id, strings.NewReader(msg), nil, recordFor(id))
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(msg)) {
		t.Errorf("size = %d, want %d", size, len(msg))
	}
	got, err := os.ReadFile(filepath.Join(s.root, "queue", id, "message.eml"))
	if err != nil || string(got) != msg {
		t.Fatalf("message.eml = %q, %v", got, err)
	}
	rec, err := s.readRecord(areaQueue, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Envelope.ID != id || rec.Envelope.Size != size || rec.Version != 1 {
		t.Errorf("record = %+v", rec)
	}
	for _, p := range []string{filepath.Join("queue", id), filepath.Join("queue", id, "message.eml"), filepath.Join("queue", id, "record.json")} {
		fi, err := os.Stat(filepath.Join(s.root, p))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v; mail must not be readable by others", p, perm)
		}
	}
	if left := listTree(filepath.Join(s.root, "tmp")); len(left) != 0 {
		t.Errorf("tmp/ still holds %v", left)
	}
}

// TestSpoolFailuresLeaveNothing injects a fault at every step of the
// write path: each must fail with a *SpoolError of the right kind and
// leave no file behind.
func TestSpoolFailuresLeaveNothing(t *testing.T) {
	eio := syscall.EIO
	for _, tc := range []struct {
		name    string
		setup   func(*faultFS)
		storage bool // InsufficientStorage
	}{
		{"disk full during the message", func(f *faultFS) { f.setBudget(100) }, true},
		{"disk full at the record", func(f *faultFS) { f.set("write:record.json", syscall.ENOSPC) }, true},
		{"filesystem quota", func(f *faultFS) { f.set("write:message.eml", syscall.EDQUOT) }, true},
		{"permission denied", func(f *faultFS) { f.set("create:message.eml", syscall.EACCES) }, false},
		{"read-only filesystem", func(f *faultFS) { f.set("create:message.eml", syscall.EROFS) }, false},
		{"fsync of the message fails", func(f *faultFS) { f.set("sync:message.eml", eio) }, false},
		{"fsync of the record fails", func(f *faultFS) { f.set("sync:record.json", eio) }, false},
		{"rename into queue fails", func(f *faultFS) { f.set("rename:*", eio) }, false},
		{"fsync of queue/ fails after the rename", func(f *faultFS) { f.set("syncdir:queue", eio) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaultFS()
			s := newTestSpool(t, f)
			tc.setup(f)
			id := testEnv("a@example.com", "").ID
			big := strings.Repeat("x", 70_000) // several copy chunks
			_, err := s.create(id, strings.NewReader(testMessage("t")+big), nil, recordFor(id))
			var se *SpoolError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want *SpoolError", err, err)
			}
			if se.InsufficientStorage() != tc.storage {
				t.Errorf("InsufficientStorage() = %v, want %v (err %v)", se.InsufficientStorage(), tc.storage, err)
			}
			if se.Hint() == "" {
				t.Error("no hint for the admin")
			}
			if _, ok := error(se).(interface{ Permanent() bool }); ok {
				t.Error("a spool error must never claim to be permanent")
			}
			if left := messageFiles(s.root); len(left) != 0 {
				t.Errorf("partial files left: %v", left)
			}
		})
	}
}

// A stream error (size limit, timeout) passes through unwrapped, so that
// smtpd names it in its reply, and also leaves nothing.
func TestSpoolStreamErrorPassesThrough(t *testing.T) {
	s := newTestSpool(t, nil)
	boom := errors.New("client went away")
	id := testEnv("a@example.com", "").ID
	_, err := s.create(id, &failingReader{data: testMessage("x"), err: boom}, nil, recordFor(id))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	var se *SpoolError
	if errors.As(err, &se) {
		t.Errorf("a stream error was reported as a spool error: %v", err)
	}
	if left := messageFiles(s.root); len(left) != 0 {
		t.Errorf("partial files left: %v", left)
	}
}

type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestRecoverRemovesLeftovers(t *testing.T) {
	s := newTestSpool(t, nil)
	id := testEnv("a@example.com", "").ID
	if _, err := s.create(id, strings.NewReader(testMessage("keep")), nil, recordFor(id)); err != nil {
		t.Fatal(err)
	}
	// A crash during an acceptance, a deletion and a record update.
	os.MkdirAll(filepath.Join(s.root, "tmp", "0123456789abcdefghjkmnp"), 0o700)
	os.WriteFile(filepath.Join(s.root, "tmp", "0123456789abcdefghjkmnp", "message.eml"), []byte("half"), 0o600)
	os.MkdirAll(filepath.Join(s.root, "tmp", id+"x.removing"), 0o700)
	os.WriteFile(filepath.Join(s.root, "queue", id, "record.json.tmp"), []byte("{"), 0o600)
	removed, err := s.recover()
	if err != nil {
		t.Fatal(err)
	}
	if removed != 3 {
		t.Errorf("removed %d leftovers, want 3", removed)
	}
	want := []string{"queue/" + id, "queue/" + id + "/message.eml", "queue/" + id + "/record.json"}
	if got := messageFiles(s.root); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("spool after recovery = %v, want %v", got, want)
	}
}

// TestDirSyncerCoalesces checks the group commit: concurrent callers share
// fsyncs, and each returns only after an fsync that began after its call.
func TestDirSyncerCoalesces(t *testing.T) {
	f := &slowSyncFS{delay: 10 * time.Millisecond}
	d := newDirSyncer(f, t.TempDir())
	const callers = 40
	var wg sync.WaitGroup
	type span struct{ called, returned time.Time }
	spans := make([]span, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spans[i].called = time.Now()
			if err := d.sync(); err != nil {
				t.Error(err)
			}
			spans[i].returned = time.Now()
		}()
	}
	wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.runs) >= callers/2 {
		t.Errorf("%d fsyncs for %d concurrent callers; they are not shared", len(f.runs), callers)
	}
	for i, s := range spans {
		covered := false
		for _, r := range f.runs {
			if !r.start.Before(s.called) && !r.end.After(s.returned) {
				covered = true
			}
		}
		if !covered {
			t.Errorf("caller %d returned without an fsync that began after its call", i)
		}
	}
}

type slowSyncFS struct {
	OSFS
	delay time.Duration
	mu    sync.Mutex
	runs  []struct{ start, end time.Time }
}

func (f *slowSyncFS) SyncDir(path string) error {
	start := time.Now()
	time.Sleep(f.delay)
	f.mu.Lock()
	f.runs = append(f.runs, struct{ start, end time.Time }{start, time.Now()})
	f.mu.Unlock()
	return nil
}
