package floor

import (
	"os"
	"syscall"
)

// fdFile is a new message file held as its bare descriptor: an *os.File
// would cost an fcntl or two and a failed epoll_ctl per message, which
// no relay needs (graphrelay's spool avoids them the same way), so the
// floor does not count them.
type fdFile struct {
	fd   int
	path string
}

func createFile(path string) (*fdFile, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o600)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return &fdFile{fd: fd, path: path}, nil
	}
}

// Write writes all of p: a short write is continued, EINTR retried.
func (f *fdFile) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := syscall.Write(f.fd, p[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "write", Path: f.path, Err: err}
		}
		n += k
	}
	return n, nil
}

func (f *fdFile) Sync() error {
	if err := syscall.Fsync(f.fd); err != nil {
		return &os.PathError{Op: "fsync", Path: f.path, Err: err}
	}
	return nil
}

// Close closes the descriptor once; Linux releases it even when close
// reports an error, so it is never retried.
func (f *fdFile) Close() error {
	if f.fd < 0 {
		return nil
	}
	err := syscall.Close(f.fd)
	f.fd = -1
	if err != nil {
		return &os.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}

// rename is rename(2) alone: os.Rename first lstats the new name, to
// refuse to replace a directory, which a new message's name never is.
func rename(from, to string) error {
	if err := syscall.Rename(from, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
