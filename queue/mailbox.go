package queue

import (
	"container/heap"
	"strings"
	"time"
)

// mailbox gates delivery for one Graph mailbox. Graph's limits are per app
// and mailbox (4 concurrent requests; Exchange's ~30 messages a minute), and
// a throttled mailbox must not hold up the others, so each mailbox has its
// own waiting line, concurrency count, pacing and Retry-After floor.
type mailbox struct {
	key  string
	name string // the address as configured, for metrics labels
	// limit bounds the Graph requests in flight for the mailbox; requests
	// holds one token per request. Up to twice as many attempts may be
	// under way: the others record themselves in the journal meanwhile,
	// so the mailbox's Graph budget is not spent waiting for a disk.
	limit    int
	requests chan struct{}
	// interval is the pacing gap between attempt starts, from
	// messages_per_minute; 0 means no pacing.
	interval  time.Duration
	lastStart time.Time
	// notBefore is the Retry-After floor: no attempt for this mailbox
	// starts before it.
	notBefore time.Time
	inflight  int
	waiting   itemHeap
}

// mailboxKey is how messages are grouped: Graph counts concurrency per
// mailbox, and one mailbox is one configured address.
func mailboxKey(address, id string) string {
	if address != "" {
		return strings.ToLower(address)
	}
	return strings.ToLower(id)
}

// readyAt returns when the first waiting message may start, and false when
// nothing can start until an attempt ends (none waiting, or the
// concurrency limit reached).
func (m *mailbox) readyAt() (time.Time, bool) {
	if len(m.waiting) == 0 || m.inflight >= 2*m.limit {
		return time.Time{}, false
	}
	t := m.waiting[0].next
	if m.notBefore.After(t) {
		t = m.notBefore
	}
	if m.interval > 0 && !m.lastStart.IsZero() {
		if p := m.lastStart.Add(m.interval); p.After(t) {
			t = p
		}
	}
	return t, true
}

// floor raises the Retry-After floor to t and returns by how much the time
// under the floor grew, counted from now.
func (m *mailbox) floor(t, now time.Time) time.Duration {
	if !t.After(m.notBefore) {
		return 0
	}
	from := m.notBefore
	if now.After(from) {
		from = now
	}
	m.notBefore = t
	if t.After(from) {
		return t.Sub(from)
	}
	return 0
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
