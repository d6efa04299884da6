//go:build !windows

package queue

import "os"

// renameFile is rename(2). It is atomic but not durable by itself: the
// spool follows it with SyncDir of the directories it changed.
func renameFile(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// syncDir fsyncs a directory, so that the entries created, renamed or
// removed in it survive a power loss. On Linux a file's fsync does not
// cover its directory entry; only this does.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// openFile is os.OpenFile. POSIX lets a file be renamed or removed while
// another handle has it open, which the spool relies on.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag, perm)
}

// isBusy reports an error that only means another process has the file
// open at this moment; POSIX has none.
func isBusy(error) bool { return false }
