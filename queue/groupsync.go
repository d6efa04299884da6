package queue

import (
	"os"
	"sync"

	"github.com/graphrelay/graphrelay/internal/groupsync"
)

// newDirSyncer group-commits fsyncs of one directory. With the operating
// system's FS on POSIX the directory is held open (dirHandle); any other FS
// (a test's, which injects faults through SyncDir) is synced by path.
func newDirSyncer(fsys FS, path string) (*groupsync.Group, *dirHandle) {
	if _, ok := fsys.(OSFS); ok && holdDirOpen {
		d := &dirHandle{path: path}
		return groupsync.New(d.sync), d
	}
	return groupsync.New(func() error { return fsys.SyncDir(path) }), nil
}

// dirHandle keeps a directory open for its fsyncs, which otherwise cost an
// open, an fcntl and a close each: three system calls per group commit of
// queue/, on the path to every 250. A failed fsync drops the handle, so
// the next one starts from the path again.
type dirHandle struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (d *dirHandle) sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		f, err := openFile(d.path, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		d.f = f
	}
	if err := d.f.Sync(); err != nil {
		d.f.Close()
		d.f = nil
		return err
	}
	return nil
}

// close releases the handle; a later sync opens the directory again.
func (d *dirHandle) close() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
}
