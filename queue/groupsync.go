package queue

import (
	"os"
	"sync"
)

// groupSync group-commits an fsync. Every caller needs an fsync that
// starts after its own write or rename; a caller that arrives while one
// runs waits for it to end and then shares the next one with everyone
// else who arrived meanwhile. Under load this turns one fsync per message
// into one per batch, which is most of the difference between hundreds
// and thousands of messages per second.
type groupSync struct {
	fn func() error

	mu        sync.Mutex
	cond      *sync.Cond
	started   uint64 // generations begun
	completed uint64 // generations finished
	running   bool
	err       error // of the last completed generation
}

func newGroupSync(fn func() error) *groupSync {
	g := &groupSync{fn: fn}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// sync returns once an fsync that began after the call has completed,
// with that fsync's error.
func (g *groupSync) sync() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	want := g.started + 1
	for g.completed < want {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		gen := g.started
		g.mu.Unlock()
		err := g.fn()
		g.mu.Lock()
		g.running = false
		g.completed = gen
		g.err = err
		g.cond.Broadcast()
	}
	return g.err
}

// newDirSyncer group-commits fsyncs of one directory. With the operating
// system's FS on POSIX the directory is held open (dirHandle); any other FS
// (a test's, which injects faults through SyncDir) is synced by path.
func newDirSyncer(fsys FS, path string) (*groupSync, *dirHandle) {
	if _, ok := fsys.(OSFS); ok && holdDirOpen {
		d := &dirHandle{path: path}
		return newGroupSync(d.sync), d
	}
	return newGroupSync(func() error { return fsys.SyncDir(path) }), nil
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
