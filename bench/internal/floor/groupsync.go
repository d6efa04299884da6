package floor

import "sync"

// groupSync group-commits an fsync: each caller returns once an fsync
// that began after its call has ended. Callers that arrive while one runs
// share the next, so that concurrent messages pay one fsync of q/ between
// them, the least a spool of one file per message can do.
type groupSync struct {
	fn func() error

	mu        sync.Mutex
	cond      *sync.Cond
	started   uint64 // fsyncs begun
	completed uint64 // fsyncs ended
	running   bool
	waiting   int // callers waiting for a running fsync to end, for tests
	err       error
}

func newGroupSync(fn func() error) *groupSync {
	g := &groupSync{fn: fn}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *groupSync) sync() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	want := g.started + 1
	for g.completed < want {
		if g.running {
			g.waiting++
			g.cond.Wait()
			g.waiting--
			continue
		}
		g.running = true
		g.started++
		gen := g.started
		g.mu.Unlock()
		err := g.fn()
		g.mu.Lock()
		g.running, g.completed, g.err = false, gen, err
		g.cond.Broadcast()
	}
	return g.err
}
