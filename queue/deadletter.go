package queue

import (
	"time"
)

// deadLetter gives a message up: it records why, queues a notice if one
// is configured, and moves the message directory to failed/ in one
// rename. The notice is queued before the move, so a crash in between
// can repeat a notice but never lose one.
func (q *Queue) deadLetter(it *item, reason string, res result, now time.Time) {
	rec := it.rec
	q.opts.Observer.DeliveryFailed(rec.Envelope.Mailbox.Address, res.code, res.outcome, false)
	q.opts.Observer.DeadLettered(rec.Envelope.Mailbox.Address, reason)
	d := &DeadLetter{At: now, Reason: reason, Status: res.status, Code: res.code,
		RequestID: res.requestID, Hint: res.hint}
	if res.err != nil {
		d.Error = res.err.Error()
	}
	if reason == "expired" {
		d.Hint = "Graph kept failing temporarily until queue.max_age passed; the last error says why. " + res.hint
	}
	rec.Dead = d
	if q.wantsNotice(rec) {
		if id, err := q.notify(noticeFailed, it, res, now); err != nil {
			q.log.Error("cannot queue the failure notice", append(q.msgAttrs(rec), "err", err)...)
		} else {
			d.NoticeID = id
		}
	}
	q.saveRecord(rec)
	if err := q.spool.move(it.id, areaQueue, areaFailed); err != nil {
		// The record says it is dead; the next start finishes the move.
		q.log.Error("cannot move the dead letter to failed/", append(q.msgAttrs(rec), "err", err)...)
	}
	q.log.Error("failed", append(q.msgAttrs(rec), "reason", reason, "attempts", len(rec.Attempts),
		"op", res.op, "status", res.status, "code", res.code, "request_id", res.requestID,
		"client_request_id", res.clientRequestID, "elapsed_ms", ms(now.Sub(rec.Envelope.ReceivedAt)),
		"err", res.err, "hint", d.Hint, "notice_id", d.NoticeID)...)
	q.finish(it, true, time.Time{})
}
