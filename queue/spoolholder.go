package queue

import (
	"time"
)

// spoolHolder is the local spool's Holder for an item whose attempt, or
// expiry, Fate settles. The record is stored and the message removed or
// moved while Fate decides; the item goes back to the scheduler (or is
// forgotten) in Done, after the outcome's log line.
type spoolHolder struct {
	q    *Queue
	it   *item
	gone bool
}

func (h *spoolHolder) Record() *Record { return h.it.rec }

func (h *spoolHolder) Deleted() bool {
	h.q.mu.Lock()
	defer h.q.mu.Unlock()
	return h.it.deleteRequested
}

func (h *spoolHolder) Remove() error {
	h.gone = true
	return h.q.spool.remove(areaQueue, h.it.id)
}

// Retry stores the record; failing to is logged, not fatal (see
// saveRecord).
func (h *spoolHolder) Retry() error {
	h.it.onDisk = h.q.saveRecord(h.it.rec)
	return nil
}

// Bury stores the dead letter's record and moves the message directory
// to failed/ in one rename. A record that says dead in queue/ is moved by
// the next start, so a failed move is logged and the message is gone
// from this run's schedule all the same.
func (h *spoolHolder) Bury() error {
	q, it := h.q, h.it
	h.gone = true
	q.saveRecord(it.rec)
	if err := q.spool.move(it.id, areaQueue, areaFailed); err != nil {
		q.log.Error("cannot move the dead letter to failed/", append(MsgAttrs(it.rec), "err", err)...)
	}
	return nil
}

func (h *spoolHolder) Notify(kind string, res Result, now time.Time) (string, error) {
	return h.q.notify(kind, h.it, res.r, now)
}

func (h *spoolHolder) Done() { h.q.finish(h.it, h.gone, h.it.rec.NextTry) }
