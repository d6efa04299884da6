//go:build windows

package queue

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/windows"
)

// lockRange is the byte range of the lock file that LockFileEx locks. A
// Windows byte-range lock is mandatory: nobody else can read the bytes
// it covers. The range therefore lies far beyond the pid the file holds,
// so admins (and "type lock") can still read it while the daemon runs.
const (
	lockOffset = 1 << 40
	lockLen    = 1
)

// lockSpool takes the spool's exclusive lock: LockFileEx with
// LOCKFILE_EXCLUSIVE_LOCK|LOCKFILE_FAIL_IMMEDIATELY on <dir>\lock, the
// counterpart of flock(LOCK_EX|LOCK_NB). The daemon holds it for its whole
// life; admin commands take it only when no daemon runs, and otherwise
// send their request to the daemon (control.go). Windows releases the
// lock when the holder's handle is closed, which process termination
// (TerminateProcess, a crash, taskkill /f) does, so no stale lock
// survives a crash.
func lockSpool(root string) (*os.File, error) {
	f, err := os.OpenFile(root+`\`+fileLock, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("open spool lock: %w", err)
	}
	ol := new(windows.Overlapped)
	ol.Offset = uint32(lockOffset & 0xffffffff)
	ol.OffsetHigh = uint32(lockOffset >> 32)
	flags := uint32(windows.LOCKFILE_EXCLUSIVE_LOCK | windows.LOCKFILE_FAIL_IMMEDIATELY)
	if err := windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, lockLen, 0, ol); err != nil {
		f.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("lock spool: %w", err)
	}
	return f, nil
}

// notePID writes the holder's pid into the lock file, for admins.
func notePID(f *os.File) {
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\r\n"), 0)
}

// unlockSpool releases the lock.
func unlockSpool(f *os.File) error {
	if f == nil {
		return nil
	}
	ol := new(windows.Overlapped)
	ol.Offset = uint32(lockOffset & 0xffffffff)
	ol.OffsetHigh = uint32(lockOffset >> 32)
	_ = windows.UnlockFileEx(windows.Handle(f.Fd()), 0, lockLen, 0, ol)
	return f.Close()
}
