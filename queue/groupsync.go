package queue

import "sync"

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

// newDirSyncer group-commits fsyncs of one directory.
func newDirSyncer(fs FS, path string) *groupSync {
	return newGroupSync(func() error { return fs.SyncDir(path) })
}
