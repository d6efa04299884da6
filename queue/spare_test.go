package queue

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// truncateCountFS counts the truncations of reused spare files.
type truncateCountFS struct {
	faultFS
	mu sync.Mutex
	n  int
}

func (c *truncateCountFS) Reuse(path string, truncate bool) (File, error) {
	f, err := c.faultFS.Reuse(path, truncate)
	if err != nil {
		return nil, err
	}
	return &truncateCountFile{File: f, c: c}, nil
}

type truncateCountFile struct {
	File
	c *truncateCountFS
}

func (f *truncateCountFile) Truncate(size int64) error {
	f.c.mu.Lock()
	f.c.n++
	f.c.mu.Unlock()
	return f.File.Truncate(size)
}

func (c *truncateCountFS) truncations() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// runFiller runs the spool's spare filler, as a started queue does, with
// the given time a recycled file may keep its bytes, and returns once the
// pool is stocked. The returned function stops the filler (the test's end
// does too); the pool then still behaves as with a filler running.
func runFiller(t *testing.T, s *Spool, dirtyFor time.Duration) (stop func()) {
	t.Helper()
	s.spares.dirtyFor = dirtyFor
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() { s.spares.fill(quit); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); <-done }) }
	t.Cleanup(stop)
	eventually(t, time.Minute, "the pool stocked", func() bool {
		s.spares.mu.Lock()
		defer s.spares.mu.Unlock()
		return len(s.spares.files) >= spareHigh
	})
	return stop
}

// spareSizes returns the sizes of the files in spare/.
func spareSizes(t *testing.T, s *Spool) (nonEmpty int, total int64) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.root, areaSpare))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Size() > 0 {
			nonEmpty++
			total += fi.Size()
		}
	}
	return nonEmpty, total
}

// mustCreate spools msg and checks that its file holds exactly the
// envelope line and msg: nothing of a longer message the file held
// before.
func mustCreate(t *testing.T, s *Spool, msg string) *Record {
	t.Helper()
	rec := newRecord()
	if _, _, err := s.create(rec, strings.NewReader(msg), nil); err != nil {
		t.Fatal(err)
	}
	st, err := s.read(areaQueue, rec.Envelope.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(s.msgPath(areaQueue, rec.Envelope.ID))
	if err != nil {
		t.Fatal(err)
	}
	if string(raw[st.offset:]) != msg {
		t.Fatalf("the file holds %d bytes after the envelope line, want exactly the %d of the message", len(raw)-int(st.offset), len(msg))
	}
	return rec
}

// TestSpareReusedWithoutEmptying: while the filler runs, a delivered
// message's file goes to spare/ with its bytes and is overwritten by the
// next message, cut to that message's length only when it is shorter.
func TestSpareReusedWithoutEmptying(t *testing.T) {
	c := &truncateCountFS{faultFS: *newFaultFS()}
	s := newTestSpool(t, c)
	runFiller(t, s, time.Hour)
	c.set("create:msg", syscall.EMFILE) // every message must go into a spare

	long := mustCreate(t, s, testMessage("long")+strings.Repeat("x", 5000))
	if err := s.remove(areaQueue, long.Envelope.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := spareSizes(t, s); n != 1 {
		t.Fatalf("%d spare files hold bytes, want the recycled one, not emptied", n)
	}
	short := mustCreate(t, s, testMessage("short"))
	if n := c.truncations(); n != 1 {
		t.Errorf("a shorter message in the longer one's file: %d truncations, want 1", n)
	}
	if err := s.remove(areaQueue, short.Envelope.ID); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, testMessage("longer again")+strings.Repeat("y", 100))
	if n := c.truncations(); n != 1 {
		t.Errorf("a longer message in the shorter one's file: %d truncations, want none more", n-1)
	}
	if n, _ := spareSizes(t, s); n != 0 {
		t.Errorf("%d spare files hold bytes; each recycled one was reused", n)
	}
}

// TestSpareEmptiedWhenUnused: a recycled file that is not reused within
// its time is emptied by the filler, so no delivered message lingers in
// spare/; without a filler it is emptied at once.
func TestSpareEmptiedWhenUnused(t *testing.T) {
	t.Run("filler", func(t *testing.T) {
		s := newTestSpool(t, nil)
		runFiller(t, s, time.Millisecond)
		for range 3 {
			rec := mustCreate(t, s, testMessage("waits")+strings.Repeat("x", 3000))
			if err := s.remove(areaQueue, rec.Envelope.ID); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, time.Minute, "the recycled files emptied", func() bool { n, _ := spareSizes(t, s); return n == 0 })
		s.spares.mu.Lock()
		defer s.spares.mu.Unlock()
		if len(s.spares.files) < spareHigh {
			t.Errorf("the pool holds %d files after the sweep, want them kept", len(s.spares.files))
		}
		for _, sp := range s.spares.files {
			if sp.size != 0 {
				t.Errorf("spare %s counted as holding %d bytes after the sweep", sp.path, sp.size)
			}
		}
	})
	t.Run("more than one sweep holds", func(t *testing.T) {
		s := newTestSpool(t, nil)
		runFiller(t, s, time.Millisecond)
		recycleMany(t, s, sweepBatch+10)
		eventually(t, time.Minute, "every recycled file emptied", func() bool { n, _ := spareSizes(t, s); return n == 0 })
	})
	t.Run("no filler", func(t *testing.T) {
		s := newTestSpool(t, nil)
		rec := mustCreate(t, s, testMessage("alone"))
		if err := s.remove(areaQueue, rec.Envelope.ID); err != nil {
			t.Fatal(err)
		}
		if n, _ := spareSizes(t, s); n != 0 {
			t.Errorf("%d spare files hold bytes without a filler to empty them", n)
		}
	})
}

// TestQueueCloseEmptiesSpares: a queue that stops leaves no delivered
// message's bytes in spare/, however recently it was delivered.
func TestQueueCloseEmptiesSpares(t *testing.T) {
	q := startRecycled(t, 3)
	// The file recycled last has not been reused: it holds its bytes.
	if n, _ := spareSizes(t, q.spool); n == 0 {
		t.Fatal("no spare file holds a delivered message's bytes before Close")
	}
	closeQueue(q)
	if n, total := spareSizes(t, q.spool); n != 0 {
		t.Errorf("after Close %d spare files hold %d bytes", n, total)
	}
}

// startRecycled starts a queue whose recycled files keep their bytes for
// an hour, delivers n messages and waits until their files are recycled.
func startRecycled(t *testing.T, n int) *Queue {
	t.Helper()
	opts := testOptions(t)
	q, err := Open(opts, newFakeSender())
	if err != nil {
		t.Fatal(err)
	}
	q.spool.spares.dirtyFor = time.Hour
	q.Start()
	for range n {
		deliver(t, q, "a@example.com", "x")
	}
	eventually(t, time.Minute, "delivered and recycled", func() bool {
		entries, _ := os.ReadDir(filepath.Join(opts.Dir, areaQueue))
		return len(entries) == 0
	})
	return q
}

// closeQueue closes q, giving its attempts ten seconds to end.
func closeQueue(q *Queue) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q.Close(ctx)
}

// TestSpoolTrimFailureLeavesNothing: a failure to cut a reused file to
// the new message's length fails the message like any write error, and
// leaves no file of it behind.
func TestSpoolTrimFailureLeavesNothing(t *testing.T) {
	f := newFaultFS()
	s := newTestSpool(t, f)
	runFiller(t, s, time.Hour)
	long := mustCreate(t, s, testMessage("long")+strings.Repeat("x", 5000))
	if err := s.remove(areaQueue, long.Envelope.ID); err != nil {
		t.Fatal(err)
	}
	f.set("truncate:spare", syscall.EIO)
	_, _, err := s.create(newRecord(), strings.NewReader(testMessage("short")), nil)
	if se, ok := err.(*SpoolError); !ok || se.Op != "write message file" {
		t.Fatalf("err = %v (%T), want a *SpoolError writing the message file", err, err)
	}
	if left := messageFiles(s.root); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// recycleMany spools n messages at once and then removes them all, so that
// n files are recycled while none is reused.
func recycleMany(t *testing.T, s *Spool, n int) {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = mustCreate(t, s, testMessage("many")).Envelope.ID
	}
	for _, id := range ids {
		if err := s.remove(areaQueue, id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSweepAllEmptiesEveryBatch: sweepAll, which the queue runs when it
// closes, empties more files than one sweep takes.
func TestSweepAllEmptiesEveryBatch(t *testing.T) {
	s := newTestSpool(t, nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	s.spares.dirtyFor = time.Hour
	go func() { s.spares.fill(stop); close(done) }()
	eventually(t, time.Minute, "the filler running", func() bool {
		s.spares.mu.Lock()
		defer s.spares.mu.Unlock()
		return s.spares.dirty != nil
	})
	recycleMany(t, s, 2*sweepBatch+5)
	close(stop)
	<-done
	if n, _ := spareSizes(t, s); n != 2*sweepBatch+5 {
		t.Fatalf("%d spare files hold bytes before sweepAll, want %d", n, 2*sweepBatch+5)
	}
	s.spares.sweepAll()
	if n, total := spareSizes(t, s); n != 0 {
		t.Errorf("after sweepAll %d spare files hold %d bytes", n, total)
	}
}
