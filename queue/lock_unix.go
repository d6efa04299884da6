//go:build unix

package queue

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// lockSpool takes the spool's exclusive lock: flock(LOCK_EX|LOCK_NB) on
// <dir>/lock. The daemon holds it for its whole life; admin commands take
// it only when no daemon runs, and otherwise send their request to the
// daemon (control.go). The kernel drops the lock when the holder dies,
// kill -9 included, so no stale lock survives a crash.
func lockSpool(root string) (*os.File, error) {
	f, err := os.OpenFile(root+"/"+fileLock, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("open spool lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("lock spool: %w", err)
	}
	return f, nil
}

// notePID writes the holder's pid into the lock file, for admins.
func notePID(f *os.File) {
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
}

// unlockSpool releases the lock.
func unlockSpool(f *os.File) error {
	if f == nil {
		return nil
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return f.Close()
}
