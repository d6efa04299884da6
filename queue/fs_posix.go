//go:build !windows

package queue

import (
	"os"
	"syscall"
)

// renameFile is rename(2). It is atomic but not durable by itself: the
// spool follows it with SyncDir of the directories it changed. It is not
// os.Rename, which first stats newpath to refuse replacing a directory:
// one more system call per rename, and the spool never renames onto a
// directory of its own.
func renameFile(oldpath, newpath string) error {
	for {
		err := syscall.Rename(oldpath, newpath)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
		}
		return nil
	}
}

// holdFiles: a message file's handle is kept open for its reuse (held.go).
const holdFiles = true

// holdDirOpen: a directory's fsync goes through a descriptor held open
// (dirHandle).
const holdDirOpen = true

// syncDir fsyncs a directory, so that the entries created, renamed or
// removed in it survive a power loss. On Linux a file's fsync does not
// cover its directory entry; only this does.
func syncDir(path string) error {
	d, err := openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// openFile is open(2) wrapped in an *os.File. It is not os.OpenFile,
// which also registers the descriptor with the runtime's network poller:
// four fcntl calls and an epoll_ctl that fails for a regular file, five
// wasted system calls on every open of a spool file, while os.NewFile
// checks the descriptor with one fcntl and leaves it blocking, which is
// how os.OpenFile ends up using a regular file anyway. POSIX lets a file
// be renamed or removed while another handle has it open, which the spool
// relies on.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	fd, err := openFD(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openFD opens path with open(2) alone, close-on-exec.
func openFD(path string, flag int, perm os.FileMode) (int, error) {
	for {
		fd, err := syscall.Open(path, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == syscall.EINTR {
			continue // a slow filesystem (NFS, FUSE) can be interrupted
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// isBusy reports an error that only means another process has the file
// open at this moment; POSIX has none.
func isBusy(error) bool { return false }
