package queue

import "time"

// item is one message in queue/ as the scheduler sees it. Its record is
// owned by whoever holds the item: the scheduler while it waits (guarded
// by Queue.mu), a worker while an attempt runs, an admin request while it
// is checked out.
//
// A waiting message whose record is on disk as it is in memory (onDisk)
// drops it (rec nil) and keeps only what the scheduler needs, so that a
// backlog during a long Graph outage costs a few hundred bytes a message
// rather than its whole record with every attempt; the record is read back
// (Queue.record) when an attempt or an admin request takes the item.
type item struct {
	id       string
	rec      *Record // nil while parked, see above
	onDisk   bool    // rec is saved as it is
	size     int64
	received time.Time // Envelope.ReceivedAt, for the oldest-age metric
	basis    time.Time // what queue.max_age counts from (Record.expiry)
	offset   int64     // where the message starts in its .msg file
	box      *mailbox
	next     time.Time
	index    int // in box.waiting; -1 when not waiting
	state    itemState
	// deleteRequested is set by "queue delete" during an attempt; the
	// worker removes the message when the attempt ends.
	deleteRequested bool
}

type itemState int

const (
	stateWaiting itemState = iota
	stateInFlight
	stateCheckedOut
)

// newItem returns the scheduler's item for a record; onDisk tells that
// the record is saved as it is.
func newItem(rec *Record, offset int64, onDisk bool) *item {
	it := &item{id: rec.Envelope.ID, offset: offset, next: rec.NextTry}
	it.setRecord(rec, onDisk)
	return it
}

// setRecord takes rec as the item's record and copies what the scheduler
// needs from it.
func (it *item) setRecord(rec *Record, onDisk bool) {
	it.rec, it.onDisk = rec, onDisk
	it.size = rec.Envelope.Size
	it.received = rec.Envelope.ReceivedAt
	it.basis = rec.expiry(0)
}

// expiry is when the message is given up if it still fails.
func (it *item) expiry(maxAge time.Duration) time.Time { return it.basis.Add(maxAge) }

// park drops a waiting item's record when it is saved.
func (it *item) park() {
	if it.onDisk {
		it.rec = nil
	}
}

// record returns the item's record, reading it back from the spool when
// the item was parked. The caller holds the item (a worker, an admin
// request).
func (q *Queue) record(it *item) (*Record, error) {
	if it.rec != nil {
		return it.rec, nil
	}
	if rec, offset, ok := q.spool.fresh.takeRecord(it.id); ok {
		// Parked before its first attempt: the record at acceptance is
		// still in memory (freshCache).
		it.rec, it.offset = rec, offset
		return rec, nil
	}
	st, err := q.spool.read(areaQueue, it.id)
	if err != nil {
		return nil, err
	}
	it.rec, it.offset = st.rec, st.offset
	return it.rec, nil
}
