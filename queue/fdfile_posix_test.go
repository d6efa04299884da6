//go:build !windows

package queue

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFDFile: the bare-descriptor file writes, patches, cuts, syncs and
// rewinds like an *os.File, and reports errors as *os.PathError carrying the
// errno, which the spool classifies (a full disk is ENOSPC).
func TestFDFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := openWrite(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello, world and more")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("HELLO"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(12); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// A held file is rewound before its next message (held.go).
	if off, err := f.Seek(0, io.SeekStart); err != nil || off != 0 {
		t.Fatalf("Seek to the start: %d, %v", off, err)
	}
	if _, err := f.Write([]byte("J")); err != nil {
		t.Fatal(err)
	}
	if off, err := f.Seek(0, io.SeekCurrent); err != nil || off != 1 {
		t.Errorf("offset after one byte written from the start: %d, %v", off, err)
	}
	if _, err := f.Seek(-2, io.SeekCurrent); err == nil {
		t.Error("Seek before the start succeeded")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "JELLO, world" {
		t.Errorf("file holds %q", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != filePerm {
		t.Errorf("mode %v, want %v", fi.Mode().Perm(), os.FileMode(filePerm))
	}
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if _, err := openWrite(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm); !errors.Is(err, fs.ErrExist) {
		t.Errorf("creating an existing file: %v", err)
	}

	full, err := openWrite("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	_, err = full.Write([]byte("no room"))
	var pe *os.PathError
	if !errors.As(err, &pe) || !errors.Is(err, syscall.ENOSPC) || pe.Path != "/dev/full" {
		t.Errorf("write to a full device: %v (%T), want a *os.PathError with ENOSPC", err, err)
	}
}
