package queue

import (
	"io"
	"os"
)

// FS is the filesystem the spool writes through. Production uses the
// operating system; tests inject faults (a full disk after N bytes, a
// refused rename) that cannot be produced reliably on a real disk, so that
// every failure path can be shown to answer 4xx and leave nothing behind.
// Reads go straight to the os package: a read fault is reported where it
// happens and needs no injection.
type FS interface {
	// Create makes a new file that must not exist yet.
	Create(path string) (File, error)
	// Reuse opens an existing file for writing from its start, emptying
	// it when truncate is set.
	Reuse(path string, truncate bool) (File, error)
	// Append opens a file for appending, creating it if needed.
	Append(path string) (File, error)
	Rename(oldpath, newpath string) error
	Remove(path string) error
	// Empty truncates a file to nothing, by path: one truncate(2), where
	// opening the file to truncate it costs an open, a close and the
	// runtime's poller registration. The spare files that wait unused are
	// emptied so (spare.go).
	Empty(path string) error
	// SyncDir makes the entries created, renamed or removed in a directory
	// survive a power loss: an fsync of the directory on Linux and the
	// BSDs; on Windows, where NTFS has made them durable already, nothing
	// (see fs_windows.go and FORMAT.md).
	SyncDir(path string) error
}

// File is a file being written.
type File interface {
	io.Writer
	// WriteAt fills in a .msg file's size field after the message.
	io.WriterAt
	// Truncate cuts a reused spare file to the length of the message
	// written into it.
	Truncate(size int64) error
	// Seek rewinds a file held open for reuse (held.go) to its start.
	io.Seeker
	Sync() error
	Close() error
}

// OSFS is the FS of the operating system.
type OSFS struct{}

// Spool directories and files are private: messages are mail content.
const (
	dirPerm  = 0o700
	filePerm = 0o600
)

func (OSFS) Create(path string) (File, error) {
	return openWrite(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
}

func (OSFS) Reuse(path string, truncate bool) (File, error) {
	flags := os.O_WRONLY
	if truncate {
		flags |= os.O_TRUNC
	}
	return openWrite(path, flags, filePerm)
}

func (OSFS) Append(path string) (File, error) {
	return openFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, filePerm)
}

// openRead opens a spool file for reading. Like every spool file it may
// be renamed or removed meanwhile (see openFile).
func openRead(path string) (*os.File, error) { return openFile(path, os.O_RDONLY, 0) }

// readFile is os.ReadFile through openRead.
func readFile(path string) ([]byte, error) {
	f, err := openRead(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Rename replaces newpath by oldpath in one atomic step. How it is made
// durable differs by platform: see fs_windows.go and fs_posix.go.
func (OSFS) Rename(oldpath, newpath string) error { return renameFile(oldpath, newpath) }

func (OSFS) Remove(path string) error { return os.Remove(path) }

func (OSFS) Empty(path string) error { return os.Truncate(path, 0) }

func (OSFS) SyncDir(path string) error { return syncDir(path) }
