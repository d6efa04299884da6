package queue

import (
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"time"
)

// attempt makes one delivery attempt for it, which the dispatcher has
// marked in flight with a slot of its mailbox's gate, and decides what
// becomes of the message.
func (q *Queue) attempt(it *item, start time.Time) {
	defer q.attempts.Done()
	g := it.box.gate
	rec, err := q.record(it)
	if err != nil {
		g.cancel()
		q.unreadableRecord(it, err)
		return
	}
	n := len(rec.Attempts) + 1
	// Record the attempt, and a pessimistic next try, before the request:
	// a crash now leaves an honest count and no immediate retry storm.
	next := start.Add(q.backoff(n))
	seg, err := q.journal.begin(journalEntry{ID: it.id, N: n, Start: start, NextTry: next})
	if err != nil {
		g.cancel()
		q.log.Error("cannot record the delivery attempt, so it is not made; retrying later", append(q.msgAttrs(rec),
			"err", err, "retry_at", next, "hint", (&SpoolError{Err: err}).Hint())...)
		q.finish(it, false, next)
		return
	}
	defer q.journal.end(seg)
	f, msg, err := q.spool.openMessage(areaQueue, it.id, it.offset, rec.Envelope.Size)
	if err == nil {
		defer f.Close()
		wait, lerr := g.leave(q.ctx, q.halt)
		if lerr != nil {
			// The daemon stopped dispatching before this attempt, prepared
			// ahead, could send its request: it is not made, and the
			// journal entry ends unused.
			g.cancel()
			q.finish(it, false, time.Now())
			return
		}
		if wait > 0 {
			// A 429 raised the mailbox's floor while this attempt was being
			// recorded or waited for a request slot. The request does not
			// leave, and the message waits for the floor in its line rather
			// than holding a worker; the journal entry ends unused.
			g.cancel()
			q.finish(it, false, time.Now().Add(wait))
			return
		}
		// With pacing, the next request may be scheduled now that this one
		// has left.
		q.poke()
	} else {
		g.cancel()
	}
	rec.Attempts = append(rec.Attempts, Attempt{N: n, Start: start, Outcome: OutcomeStarted})
	rec.NextTry = next
	it.onDisk = false
	var res result
	if err != nil {
		res = unreadable(err)
	} else {
		rcpt, serr := q.sender.Send(q.ctx, &rec.Envelope, msg, rec.Envelope.Size)
		end := time.Now()
		res = classify(rcpt, serr, q.stopping.Load(), q.opts.RetryMax)
		// The floor applies to the whole mailbox, and is in place (and on
		// disk, for a restart) before the slot goes to another attempt.
		if res.retryAfter > 0 || res.status == http.StatusTooManyRequests {
			added := q.raiseFloor(it.box, end.Add(res.retryAfter), end)
			q.opts.Observer.Throttled(it.box.name, res.status == http.StatusTooManyRequests, added)
		}
		g.release(end, res.retryAfter)
		// The slot is free now, not when this attempt's outcome is
		// recorded: the next waiting message starts at once, instead of
		// after the removal, the log line and the dispatcher's wake-up.
		q.redispatch()
	}
	end := time.Now()
	res.fill(&rec.Attempts[n-1], end)

	q.mu.Lock()
	deleteRequested := it.deleteRequested
	q.mu.Unlock()

	if res.ambiguous {
		q.log.Warn("possible duplicate: Graph may have accepted this message although no success was seen; a retry can deliver it twice",
			append(q.msgAttrs(rec), "attempt", n, "client_request_id", res.clientRequestID, "request_id", res.requestID, "err", res.err)...)
	}
	switch {
	case res.outcome == "":
		q.delivered(it, n, res, start, end)
	case deleteRequested:
		q.removeDeleted(it)
	case res.outcome == OutcomePermanent:
		q.deadLetter(it, "permanent", res, end)
	case res.outcome == OutcomeInterrupted:
		// Resume as soon as the daemon is back.
		rec.NextTry = end
		it.onDisk = q.saveRecord(rec)
		q.log.Info("interrupted", append(q.msgAttrs(rec), "attempt", n, "client_request_id", res.clientRequestID)...)
		q.finish(it, false, end)
	default:
		q.defer_(it, n, res, end)
	}
}

// unreadable is the outcome of an attempt whose spooled message cannot be
// opened.
func unreadable(err error) result {
	r := result{outcome: OutcomeLocal, err: err, hint: "the spooled message file cannot be read; check queue.dir"}
	if errors.Is(err, fs.ErrNotExist) {
		// Without its bytes the message can never be sent.
		r.outcome = OutcomePermanent
		r.hint = "the message file is missing from the spool; it was removed outside graphrelay"
	}
	return r
}

// delivered removes a message Graph accepted.
func (q *Queue) delivered(it *item, n int, res result, start, end time.Time) {
	rec := it.rec
	if err := q.spool.remove(areaQueue, it.id); err != nil {
		// The message would be sent again after a restart.
		q.log.Error("delivered, but cannot remove it from the spool; it may be sent again after a restart",
			append(q.msgAttrs(rec), "err", err)...)
	}
	q.opts.Observer.Delivered(rec.Envelope.Mailbox.Address, end.Sub(rec.Envelope.ReceivedAt))
	q.log.Info("delivered", append(q.msgAttrs(rec), "attempt", n, "request_id", res.requestID,
		"client_request_id", res.clientRequestID, "attempt_ms", ms(end.Sub(start)),
		"elapsed_ms", ms(end.Sub(rec.Envelope.ReceivedAt)))...)
	q.finish(it, true, time.Time{})
}

// defer_ schedules the next attempt after a transient failure, or gives
// the message up when queue.max_age has passed.
func (q *Queue) defer_(it *item, n int, res result, now time.Time) {
	rec := it.rec
	deadline := rec.expiry(q.opts.MaxAge)
	if !now.Before(deadline) {
		q.deadLetter(it, "expired", res, now)
		return
	}
	q.opts.Observer.DeliveryFailed(rec.Envelope.Mailbox.Address, res.code, OutcomeTransient, true)
	delay := q.backoff(n)
	if res.retryAfter > delay {
		delay = res.retryAfter
	}
	// The last attempt is made at the deadline itself.
	next := min64(now.Add(delay), deadline)
	rec.NextTry = next
	if q.opts.DelayNoticeAfter > 0 && rec.DelayNoticeID == "" && q.wantsNotice(rec) &&
		now.Sub(rec.Envelope.ReceivedAt) >= q.opts.DelayNoticeAfter {
		if id, err := q.notify(noticeDelayed, it, res, now); err != nil {
			q.log.Error("cannot queue the delay notice", append(q.msgAttrs(rec), "err", err)...)
		} else {
			rec.DelayNoticeID = id
		}
	}
	it.onDisk = q.saveRecord(rec)
	q.log.Warn("deferred", append(q.msgAttrs(rec), "attempt", n, "op", res.op, "status", res.status, "code", res.code,
		"request_id", res.requestID, "client_request_id", res.clientRequestID, "ambiguous", res.ambiguous,
		"retry_in", next.Sub(now).Round(time.Millisecond).String(), "elapsed_ms", ms(now.Sub(rec.Envelope.ReceivedAt)),
		"err", res.err, "hint", res.hint)...)
	q.finish(it, false, next)
}

func min64(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// removeDeleted carries out a "queue delete" that arrived during the
// attempt.
func (q *Queue) removeDeleted(it *item) {
	if err := q.spool.remove(areaQueue, it.id); err != nil {
		q.log.Error("cannot delete message", append(q.msgAttrs(it.rec), "err", err)...)
	}
	q.log.Info("deleted by admin", q.msgAttrs(it.rec)...)
	q.finish(it, true, time.Time{})
}

// saveRecord writes a record after an attempt, and reports whether it
// did. Failing to is logged, not fatal: the in-memory schedule goes on
// (the item keeps its record in memory), and the record on disk is only
// behind by this attempt's outcome.
func (q *Queue) saveRecord(rec *Record) bool {
	if err := q.spool.writeState(areaQueue, rec); err != nil {
		q.log.Error("cannot update the message record", append(q.msgAttrs(rec), "err", err)...)
		return false
	}
	return true
}

// unreadableRecord handles a parked message whose record cannot be read
// back: gone from the spool (removed outside graphrelay), it is forgotten;
// otherwise it is tried again later.
func (q *Queue) unreadableRecord(it *item, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		q.log.Error("a waiting message is gone from the spool; it was removed outside graphrelay", "id", it.id, "err", err)
		q.finish(it, true, time.Time{})
		return
	}
	next := time.Now().Add(q.backoff(1))
	q.log.Error("cannot read a waiting message's record back; trying again later", "id", it.id, "err", err,
		"retry_at", next, "hint", (&SpoolError{Err: err}).Hint())
	q.finish(it, false, next)
}

// msgAttrs are the fields every per-message log line carries.
func (q *Queue) msgAttrs(rec *Record) []any {
	e := &rec.Envelope
	attrs := []any{"id", e.ID, "client_ip", e.ClientIP, "auth_user", e.AuthUser,
		"mailbox", e.Mailbox.Address, "rcpts", len(e.Recipients), "size", e.Size}
	if rec.Notice != "" {
		attrs = append(attrs, slog.String("notice", rec.Notice), slog.String("notice_for", rec.NoticeFor))
	}
	return attrs
}
