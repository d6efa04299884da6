//go:build !windows

package queue

import (
	"strings"
	"testing"
)

// The operating system's FS holds queue/ open for its fsyncs: one
// descriptor for every group commit, opened again after a failed fsync
// and after the spool is closed. A test's FS is synced by path.
func TestDirectoryHeldOpenForFsync(t *testing.T) {
	s, err := openSpool(t.TempDir(), OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	if s.dirQueue == nil || s.dirFailed == nil {
		t.Fatal("OSFS: the directories are not held open")
	}
	if _, _, err := s.create(newRecord(), strings.NewReader(testMessage("one")), nil); err != nil {
		t.Fatal(err)
	}
	first := s.dirQueue.f
	if first == nil {
		t.Fatal("no descriptor held after a message was spooled")
	}
	if _, _, err := s.create(newRecord(), strings.NewReader(testMessage("two")), nil); err != nil {
		t.Fatal(err)
	}
	if s.dirQueue.f != first {
		t.Error("the second fsync of queue/ opened it again")
	}
	// A failed fsync (here: the descriptor closed behind the spool's back)
	// is reported and drops the handle; the next one reopens.
	first.Close()
	if err := s.syncQueue.Sync(); err == nil {
		t.Error("an fsync through a closed descriptor succeeded")
	}
	if s.dirQueue.f != nil {
		t.Error("the failed descriptor is still held")
	}
	if err := s.syncQueue.Sync(); err != nil || s.dirQueue.f == nil {
		t.Errorf("after a failure: %v, held %v", err, s.dirQueue.f)
	}
	s.close()
	if s.dirQueue.f != nil {
		t.Error("close left the descriptor open")
	}
	if _, _, err := s.create(newRecord(), strings.NewReader(testMessage("three")), nil); err != nil {
		t.Errorf("spooling after close: %v", err)
	}
	s.close()

	wrapped, err := openSpool(t.TempDir(), noSyncFS{})
	if err != nil {
		t.Fatal(err)
	}
	if wrapped.dirQueue != nil {
		t.Error("a wrapping FS's SyncDir is bypassed")
	}
}
