// Package groupsync shares one run of an expensive, idempotent operation,
// an fsync, among the callers that need it at the same time: the group
// commit of the spool's directories and journal, and of the bench's floor
// server, which must pay what the spool pays and no more.
package groupsync

import "sync"

// Group group-commits fn. Every caller needs a run that starts after its
// own write or rename; a caller that arrives while one runs waits for it
// to end and then shares the next one with everyone else who arrived
// meanwhile. Under load this turns one fsync per message into one per
// batch, which is most of the difference between hundreds and thousands
// of messages per second.
type Group struct {
	fn func() error

	mu        sync.Mutex
	cond      *sync.Cond
	started   uint64 // generations begun
	completed uint64 // generations finished
	running   bool
	waiting   int   // callers waiting for a running generation, for tests
	err       error // of the last completed generation
}

// New returns a Group that runs fn.
func New(fn func() error) *Group {
	g := &Group{fn: fn}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// Sync returns once a run of fn that began after the call has completed,
// with that run's error.
func (g *Group) Sync() error {
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
