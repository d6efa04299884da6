package queue

import (
	"errors"
	"io/fs"
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
		q.log.Error("cannot record the delivery attempt, so it is not made; retrying later", append(MsgAttrs(rec),
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

	q.fate.settle(&spoolHolder{q: q, it: it}, n, res, start, end)
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

func min64(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// saveRecord writes a record after an attempt, and reports whether it
// did. Failing to is logged, not fatal: the in-memory schedule goes on
// (the item keeps its record in memory), and the record on disk is only
// behind by this attempt's outcome.
func (q *Queue) saveRecord(rec *Record) bool {
	if err := q.spool.writeState(areaQueue, rec); err != nil {
		q.log.Error("cannot update the message record", append(MsgAttrs(rec), "err", err)...)
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
