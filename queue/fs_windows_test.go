package queue

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestAppendAppends: the journal's segments are written through Append;
// every line must land after the previous one, also from a second handle.
func TestAppendAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg.log")
	a, err := OSFS{}.Append(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"one\n", "two\n"} {
		if _, err := a.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := OSFS{}.Append(path)
	if err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("three\n"))
	a.Write([]byte("four\n"))
	a.Close()
	b.Close()
	got, _ := os.ReadFile(path)
	if string(got) != "one\ntwo\nthree\nfour\n" {
		t.Errorf("segment holds %q", got)
	}
}

// TestOpenFileSharesDelete: a spool file open for reading (an admin's
// "queue show", a delivery) can still be renamed and removed.
func TestOpenFileSharesDelete(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.msg")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := openRead(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	moved := filepath.Join(dir, "spare")
	if err := (OSFS{}).Rename(path, moved); err != nil {
		t.Fatalf("rename of an open file: %v", err)
	}
	if err := (OSFS{}).Remove(moved); err != nil {
		t.Fatalf("remove of an open file: %v", err)
	}
}

// TestCreateIsExclusive: Create must refuse an existing file, as
// O_EXCL does, and say so in the way os.IsExist understands.
func TestCreateIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x")
	f, err := OSFS{}.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := (OSFS{}).Create(path); !errors.Is(err, os.ErrExist) {
		t.Errorf("second Create: %v, want ErrExist", err)
	}
}

// TestRenameReplaces: a record update renames <id>.json.tmp over an
// existing <id>.json.
func TestRenameReplaces(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("new"), 0o600)
	os.WriteFile(b, []byte("old"), 0o600)
	if err := (OSFS{}).Rename(a, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(b); string(got) != "new" {
		t.Errorf("b holds %q", got)
	}
	if _, err := os.Stat(a); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a still exists: %v", err)
	}
}

// TestCheckSpoolOnWindows: the check takes the lock with LockFileEx and
// names the volume's filesystem; while a Queue holds the lock, it says so.
func TestCheckSpoolOnWindows(t *testing.T) {
	dir := t.TempDir()
	note, err := CheckSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if note == "" {
		t.Error("no note")
	}
	lock, err := lockSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlockSpool(lock)
	if note, err := CheckSpool(dir); err != nil || note != "a running graphrelay holds its lock" {
		t.Errorf("with the lock held: %q, %v", note, err)
	}
	t.Logf("volume: %s", volumeNote(dir))
}
