package queue

import "sync"

// dirSyncer group-commits fsyncs of one directory. Every caller needs an
// fsync that starts after its own rename; a caller that arrives while an
// fsync runs waits for it to end and then shares the next one with
// everyone else who arrived meanwhile. Under load this turns one directory
// fsync per message into one per batch, which is most of the difference
// between hundreds and thousands of accepted messages per second.
type dirSyncer struct {
	fs   FS
	path string

	mu        sync.Mutex
	cond      *sync.Cond
	started   uint64 // generations begun
	completed uint64 // generations finished
	running   bool
	err       error // of the last completed generation
}

func newDirSyncer(fs FS, path string) *dirSyncer {
	d := &dirSyncer{fs: fs, path: path}
	d.cond = sync.NewCond(&d.mu)
	return d
}

// sync returns once an fsync of the directory that began after the call
// has completed, with that fsync's error.
func (d *dirSyncer) sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := d.started + 1
	for d.completed < want {
		if d.running {
			d.cond.Wait()
			continue
		}
		d.running = true
		d.started++
		gen := d.started
		d.mu.Unlock()
		err := d.fs.SyncDir(d.path)
		d.mu.Lock()
		d.running = false
		d.completed = gen
		d.err = err
		d.cond.Broadcast()
	}
	return d.err
}
