package queue

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// SpoolError is a failure to take responsibility for a message. It is
// always temporary: smtpd answers 452 4.3.1 when InsufficientStorage is
// true (a full disk, a filesystem quota or the spool quota) and 451
// otherwise, so the client keeps the message and tries again. It never
// implements Permanent, because a local disk problem must not bounce mail.
type SpoolError struct {
	Op    string // what the spool was doing, for the log
	Quota bool   // queue.max_messages or queue.max_bytes is reached
	Err   error
}

func (e *SpoolError) Error() string {
	if e.Err == nil {
		return "spool: " + e.Op
	}
	return fmt.Sprintf("spool: %s: %v", e.Op, e.Err)
}

func (e *SpoolError) Unwrap() error { return e.Err }

// Temporary reports that the client should try again later.
func (e *SpoolError) Temporary() bool { return true }

// InsufficientStorage reports a full spool: the quota, or a disk or
// filesystem quota that is full.
func (e *SpoolError) InsufficientStorage() bool {
	return e.Quota || errors.Is(e.Err, syscall.ENOSPC) || errors.Is(e.Err, syscall.EDQUOT)
}

// Hint is the admin's next step, for the log line.
func (e *SpoolError) Hint() string {
	switch {
	case e.Quota:
		return "the spool quota (queue.max_messages, queue.max_bytes) is reached because mail is not leaving: check `graphrelay queue list` for the last Graph error, or raise the quota"
	case errors.Is(e.Err, syscall.ENOSPC), errors.Is(e.Err, syscall.EDQUOT):
		return "the filesystem holding queue.dir is full; free space or move queue.dir"
	case errors.Is(e.Err, os.ErrPermission), errors.Is(e.Err, syscall.EROFS):
		return "graphrelay may not write to queue.dir: check that the directory is writable by the user graphrelay runs as, and that the filesystem is not read-only"
	case errors.Is(e.Err, errStopping):
		return "the relay is shutting down; the client will retry"
	}
	return "graphrelay could not write the message to queue.dir; check the disk and the kernel log for I/O errors"
}

var errStopping = errors.New("the queue is shutting down")

// quotaError builds the error for a spool quota that is reached.
func quotaError(what string) *SpoolError {
	return &SpoolError{Op: "quota " + what + " reached", Quota: true}
}

// errLocked means another process holds the spool lock.
var errLocked = errors.New("the spool is locked by another graphrelay process")
