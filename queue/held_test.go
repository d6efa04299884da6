package queue

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// openCountFS counts the files the spool opens to write.
type openCountFS struct {
	faultFS
	mu sync.Mutex
	n  int
}

func (c *openCountFS) Create(path string) (File, error) {
	c.count()
	return c.faultFS.Create(path)
}

func (c *openCountFS) Reuse(path string, truncate bool) (File, error) {
	c.count()
	return c.faultFS.Reuse(path, truncate)
}

func (c *openCountFS) count() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *openCountFS) opens() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// openUnder counts this process's open descriptors of regular files under
// root; the directories held open for their fsyncs are not counted.
func openUnder(t *testing.T, root string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd to count open files:", err)
	}
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !strings.HasPrefix(target, root+string(filepath.Separator)) {
			continue
		}
		if fi, err := os.Stat(target); err == nil && fi.Mode().IsRegular() {
			n++
		}
	}
	return n
}

func skipUnlessHeld(t *testing.T) {
	if !holdFiles {
		t.Skip("handles are not held on this platform (held.go)")
	}
}

// TestHeldHandleReused: a delivered message's file goes to spare/ with
// the handle it was written through, and the next message is written
// through that handle, without opening a file, and holds exactly its own
// bytes whether it is shorter or longer than the message before it.
func TestHeldHandleReused(t *testing.T) {
	skipUnlessHeld(t)
	c := &openCountFS{faultFS: *newFaultFS()}
	s := newTestSpool(t, c)
	runFiller(t, s, time.Hour)() // stopped: it would open files while they are counted
	before := c.opens()
	first := mustCreate(t, s, testMessage("first")+strings.Repeat("x", 5000))
	if got := c.opens() - before; got != 1 {
		t.Fatalf("the first message opened %d files, want 1", got)
	}
	prev := first.Envelope.ID
	for i, body := range []string{"shorter", "longer" + strings.Repeat("y", 9000), "short again"} {
		if err := s.remove(areaQueue, prev); err != nil {
			t.Fatal(err)
		}
		before := c.opens()
		prev = mustCreate(t, s, testMessage(body)).Envelope.ID // checks the bytes
		if got := c.opens() - before; got != 0 {
			t.Errorf("message %d after a delivery opened %d files, want its predecessor's handle reused", i+2, got)
		}
	}
	closedHoldsNothing(t, s)
}

// TestHeldHandlesBounded: however many messages wait, at most
// maxHeldFiles handles are held, by messages and spares together, and a
// closed spool holds none.
func TestHeldHandlesBounded(t *testing.T) {
	skipUnlessHeld(t)
	s := newTestSpool(t, nil)
	// The filler would open the files it creates while they are counted.
	runFiller(t, s, time.Hour)()
	n := maxHeldFiles + 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = mustCreate(t, s, testMessage("bounded")).Envelope.ID
	}
	if open := openUnder(t, s.root); open != maxHeldFiles {
		t.Errorf("%d messages spooled: %d files open, want the bound %d", n, open, maxHeldFiles)
	}
	for _, id := range ids {
		if err := s.remove(areaQueue, id); err != nil {
			t.Fatal(err)
		}
	}
	if open := openUnder(t, s.root); open > maxHeldFiles {
		t.Errorf("after the deliveries %d files open, more than the bound %d", open, maxHeldFiles)
	}
	for range n {
		mustCreate(t, s, testMessage("again"))
	}
	if open := openUnder(t, s.root); open != maxHeldFiles {
		t.Errorf("after reusing the spares %d files open, want the bound %d", open, maxHeldFiles)
	}
	closedHoldsNothing(t, s)
}

// TestHeldHandleReleased: a message that will not be recycled soon gives
// its handle up: when it gets a record (an attempt failed), when it moves
// to failed/, and when an unused spare is emptied.
func TestHeldHandleReleased(t *testing.T) {
	skipUnlessHeld(t)
	s := newTestSpool(t, nil)
	runFiller(t, s, time.Hour)() // stopped: it would open files while they are counted
	rec := mustCreate(t, s, testMessage("deferred"))
	if open := openUnder(t, s.root); open != 1 {
		t.Fatalf("%d files open after one message, want its handle", open)
	}
	if err := s.writeState(areaQueue, rec); err != nil {
		t.Fatal(err)
	}
	if open := openUnder(t, s.root); open != 0 {
		t.Errorf("%d files open after the message got its record, want none", open)
	}

	rec = mustCreate(t, s, testMessage("dead"))
	if err := s.move(rec.Envelope.ID, areaQueue, areaFailed); err != nil {
		t.Fatal(err)
	}
	if open := openUnder(t, s.root); open != 0 {
		t.Errorf("%d files open after the message moved to failed/, want none", open)
	}

	rec = mustCreate(t, s, testMessage("delivered"))
	if err := s.remove(areaQueue, rec.Envelope.ID); err != nil {
		t.Fatal(err)
	}
	if open := openUnder(t, s.root); open != 1 {
		t.Fatalf("%d files open after a delivery, want the spare's handle", open)
	}
	s.spares.sweep(time.Now().Add(time.Minute))
	if open := openUnder(t, s.root); open != 0 {
		t.Errorf("%d files open after the unused spare was emptied, want none", open)
	}
}

// TestQueueCloseLeavesNoOpenFiles: a queue that delivered messages and
// closed holds no spool file open.
func TestQueueCloseLeavesNoOpenFiles(t *testing.T) {
	skipUnlessHeld(t)
	q := startRecycled(t, 5)
	if n := openUnder(t, q.spool.root); n == 0 {
		t.Fatal("no spool file open before Close: no handle was held for reuse")
	}
	closeQueue(q)
	if n := openUnder(t, q.spool.root); n != 0 {
		t.Errorf("%d spool files still open after Close", n)
	}
}

// closedHoldsNothing closes s as a stopping queue does and checks that no
// spool file is left open.
func closedHoldsNothing(t *testing.T, s *Spool) {
	t.Helper()
	s.spares.sweepAll()
	s.close()
	if n := openUnder(t, s.root); n != 0 {
		t.Errorf("%d spool files still open after the spool closed", n)
	}
}
