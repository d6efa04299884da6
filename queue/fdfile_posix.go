//go:build !windows

package queue

import (
	"io"
	"os"
	"syscall"
)

// fdFile is a spool file being written by one goroutine, held as its bare
// descriptor. An *os.File costs an fcntl(F_GETFL) when it is made (to learn
// whether the descriptor is non-blocking, which a regular file opened here
// never is): one system call per message for nothing. The journal, whose
// segment is written and fsynced by different goroutines and closed while
// they may run, keeps an *os.File, whose reference count makes that safe.
//
// It writes at an offset it keeps itself, with pwrite(2), rather than at
// the kernel's file offset: a file held open for reuse (held.go) is then
// rewound by Seek without a system call.
type fdFile struct {
	fd   int
	path string
	off  int64 // where Write writes next
}

// openWrite opens a file that a single goroutine writes, syncs and closes.
func openWrite(path string, flag int, perm os.FileMode) (File, error) {
	fd, err := openFD(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fdFile{fd: fd, path: path}, nil
}

func (f *fdFile) Write(p []byte) (int, error) {
	n, err := f.writeAt(p, f.off)
	f.off += int64(n)
	return n, err
}

// Seek moves where Write writes next. Only the start and the current
// offset are needed, and neither costs a system call.
func (f *fdFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	default:
		return f.off, &os.PathError{Op: "seek", Path: f.path, Err: syscall.EINVAL}
	}
	if offset < 0 {
		return f.off, &os.PathError{Op: "seek", Path: f.path, Err: syscall.EINVAL}
	}
	f.off = offset
	return offset, nil
}

func (f *fdFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "writeat", Path: f.path, Err: syscall.EINVAL}
	}
	return f.writeAt(p, off)
}

// writeAt writes all of p at off, as os.File does: a short write is
// continued, EINTR retried.
func (f *fdFile) writeAt(p []byte, off int64) (int, error) {
	if f.fd < 0 {
		return 0, os.ErrClosed
	}
	n := 0
	for n < len(p) {
		k, err := syscall.Pwrite(f.fd, p[n:], off+int64(n))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "write", Path: f.path, Err: err}
		}
		if k == 0 {
			return n, io.ErrUnexpectedEOF
		}
		n += k
	}
	return n, nil
}

func (f *fdFile) Sync() error {
	return f.call("sync", func() error { return syscall.Fsync(f.fd) })
}

func (f *fdFile) Truncate(size int64) error {
	return f.call("truncate", func() error { return syscall.Ftruncate(f.fd, size) })
}

// call runs op on the descriptor, retrying EINTR.
func (f *fdFile) call(name string, op func() error) error {
	if f.fd < 0 {
		return os.ErrClosed
	}
	for {
		err := op()
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: name, Path: f.path, Err: err}
		}
		return nil
	}
}

// Close closes the descriptor once; EINTR is not retried, since Linux
// has released the descriptor by then and it may already be reused.
func (f *fdFile) Close() error {
	if f.fd < 0 {
		return os.ErrClosed
	}
	fd := f.fd
	f.fd = -1
	if err := syscall.Close(fd); err != nil {
		return &os.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}
