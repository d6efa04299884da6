package queue

import (
	"container/heap"
	"time"
)

// mailbox is one Graph mailbox as the scheduler sees it: its line of
// waiting messages, ordered by next try, and its gate (gate.go), which
// holds the Graph budget (requests in flight, pacing, Retry-After floor).
// Each mailbox waits in its own line so a throttled one does not hold up
// the others.
type mailbox struct {
	key  string
	name string // the address as configured, for metrics labels
	gate *gate
	// inflight counts attempts under way, from dispatch until the outcome
	// is recorded (a slot of the gate is held only until Graph answers).
	inflight int
	waiting  itemHeap
}

// readyAt returns when the first waiting message may start, and false when
// nothing can start until an attempt ends or a request leaves (none
// waiting, or the gate has no slot).
func (m *mailbox) readyAt(ahead bool) (time.Time, bool) {
	if len(m.waiting) == 0 {
		return time.Time{}, false
	}
	at, ok := m.gate.readyAt(ahead)
	if !ok {
		return time.Time{}, false
	}
	if t := m.waiting[0].next; t.After(at) {
		at = t
	}
	return at, true
}

// itemHeap orders a mailbox's waiting messages by next try, then by id,
// which is arrival order.
type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if !h[i].next.Equal(h[j].next) {
		return h[i].next.Before(h[j].next)
	}
	return h[i].id < h[j].id
}
func (h itemHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *itemHeap) Push(x any) {
	it := x.(*item)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.index = -1
	return it
}

func (m *mailbox) push(it *item)   { heap.Push(&m.waiting, it) }
func (m *mailbox) pop() *item      { return heap.Pop(&m.waiting).(*item) }
func (m *mailbox) unlink(it *item) { heap.Remove(&m.waiting, it.index) }
