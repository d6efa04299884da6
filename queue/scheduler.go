package queue

import (
	"time"
)

// mailboxFor returns the line and gate of a mailbox, creating them with
// the configured limits.
func (q *Queue) mailboxFor(address, id string) *mailbox {
	key := mailboxKey(address, id)
	if m, ok := q.boxes[key]; ok {
		return m
	}
	name := address
	if name == "" {
		name = id
	}
	m := &mailbox{key: key, name: name, gate: newGate(limitsFor(key, q.opts.Mailboxes, q.opts.DefaultConcurrency))}
	q.boxes[key] = m
	q.order = append(q.order, m)
	return m
}

// insert puts an item in its mailbox's line. Callers hold q.mu, or run
// before Start.
func (q *Queue) insert(it *item) {
	if it.box == nil {
		rec := it.rec // an item is inserted first with its record
		it.box = q.mailboxFor(rec.Envelope.Mailbox.Address, rec.Envelope.Mailbox.ID)
	}
	it.state = stateWaiting
	q.items[it.id] = it
	it.box.push(it)
}

// add schedules a freshly accepted item and starts it at once if its
// mailbox has room, so that the attempt is already running when the
// client reads its 250.
func (q *Queue) add(it *item) {
	q.mu.Lock()
	q.insert(it)
	q.dispatchLocked(time.Now())
	if it.state == stateWaiting {
		// Its mailbox is busy or held back: wait without the record.
		it.park()
	}
	q.mu.Unlock()
	q.poke()
}

// redispatch starts what may start now, from the goroutine that just
// freed a gate slot. It does not poke the dispatcher: the attempt pokes it
// when it finishes, which is soon, and the dispatcher then recomputes its
// timer.
func (q *Queue) redispatch() {
	q.mu.Lock()
	q.dispatchLocked(time.Now())
	q.mu.Unlock()
}

// poke wakes the dispatcher to recompute its timer.
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// dispatchLoop starts attempts when they are due. It sleeps until the
// earliest moment something could start, or until poked by an
// acceptance, a finished attempt or an admin request.
func (q *Queue) dispatchLoop() {
	defer q.loopsDone.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		wait, ok := q.dispatchLocked(time.Now())
		q.mu.Unlock()
		if ok {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-q.quit:
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// dispatchLocked starts every attempt that may start now, taking one
// message per mailbox in turn so that a busy mailbox cannot take all the
// workers. An attempt starts only with a slot of its mailbox's gate, so a
// throttled or paced mailbox holds no worker. A message whose queue.max_age
// passes while its mailbox is held back (a Retry-After floor, pacing) is
// given up here, by the scheduler, without waiting for the mailbox. It
// returns how long until the next one could start or expire, and false if
// only a finished attempt, a request leaving or a new message can change
// that.
func (q *Queue) dispatchLocked(now time.Time) (time.Duration, bool) {
	if q.paused.Load() {
		return 0, false
	}
	var soonest time.Time
	wakeAt := func(t time.Time) {
		if soonest.IsZero() || t.Before(soonest) {
			soonest = t
		}
	}
	n := len(q.order)
	// First every free request slot, then attempts prepared ahead (their
	// journal fsync done while the mailbox's requests are out). Preparing
	// ahead only uses workers that no mailbox's free slot may want: the
	// free slots of every mailbox are kept in reserve, also those whose
	// mail is not due yet, so that a busy mailbox's prepared attempts,
	// which wait as long as its requests take, never keep another mailbox
	// from Graph.
	for _, ahead := range [...]bool{false, true} {
		reserve := 0
		if ahead {
			for _, m := range q.order {
				reserve += m.gate.free()
			}
		}
		for progress := true; progress && q.inflight+reserve < q.opts.Workers; {
			progress = false
			soonest = time.Time{}
			for i := 0; i < n && q.inflight+reserve < q.opts.Workers; i++ {
				m := q.order[(q.rr+i)%n]
				if len(m.waiting) > 0 {
					// The head is the message due first. When the gate holds
					// it back in time (a floor, pacing) beyond its expiry, it
					// expires at its expiry; a mailbox that only lacks a free
					// slot is left alone, since one frees within graph.timeout.
					exp := m.waiting[0].expiry(q.opts.MaxAge)
					if at, ok := m.gate.readyAt(false); ok && at.After(exp) {
						if !exp.After(now) {
							q.startExpiry(m.pop())
							progress = true
							continue
						}
						wakeAt(exp)
					}
				}
				at, ok := m.readyAt(ahead)
				if !ok {
					continue
				}
				if at.After(now) {
					wakeAt(at)
					continue
				}
				if !m.gate.take(now, ahead) {
					// A request ended with a new floor since readyAt.
					continue
				}
				q.start(m.pop(), now)
				progress = true
			}
			if n > 0 {
				q.rr = (q.rr + 1) % n
			}
		}
	}
	if q.inflight >= q.opts.Workers || soonest.IsZero() {
		return 0, false
	}
	return max(soonest.Sub(now), 0), true
}

// start hands an item, whose gate slot is taken, to a new worker
// goroutine.
func (q *Queue) start(it *item, now time.Time) {
	it.state = stateInFlight
	it.box.inflight++
	q.inflight++
	q.attempts.Add(1)
	go q.attempt(it, now)
}

// startExpiry dead-letters a message whose queue.max_age has passed
// while it waited, without an attempt, in a goroutine of its own (the dead
// letter writes to disk and may queue a notice).
func (q *Queue) startExpiry(it *item) {
	it.state = stateInFlight
	it.box.inflight++
	q.inflight++
	q.attempts.Add(1)
	go func() {
		defer q.attempts.Done()
		rec, err := q.record(it)
		if err != nil {
			q.unreadableRecord(it, err)
			return
		}
		q.fate.Expire(&spoolHolder{q: q, it: it}, Result{lastResult(rec)}, time.Now())
	}()
}

// finish ends an attempt: the item waits again until next, or, when gone
// is true, it has left queue/ (delivered, dead, deleted).
func (q *Queue) finish(it *item, gone bool, next time.Time) {
	q.mu.Lock()
	it.box.inflight--
	q.inflight--
	if gone {
		delete(q.items, it.id)
	} else {
		it.next = next
		it.state = stateWaiting
		it.park()
		it.box.push(it)
	}
	q.mu.Unlock()
	if gone {
		q.release(1, it.size)
	}
	q.poke()
}

// checkout takes a waiting item away from the scheduler for an admin
// request. It returns the item and its state; only a waiting item is
// checked out.
func (q *Queue) checkout(id string) (*item, itemState, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, ok := q.items[id]
	if !ok {
		return nil, 0, false
	}
	st := it.state
	if st == stateWaiting {
		it.box.unlink(it)
		it.state = stateCheckedOut
	}
	return it, st, true
}

// checkin returns a checked-out item to the scheduler (gone false) or
// drops it (gone true).
func (q *Queue) checkin(it *item, gone bool) {
	q.mu.Lock()
	if gone {
		delete(q.items, it.id)
	} else {
		q.insert(it)
		q.dispatchLocked(time.Now())
	}
	q.mu.Unlock()
	if gone {
		q.release(1, it.size)
	}
	q.poke()
}

// reportStats gives the Observer each mailbox's messages in queue/ and
// the age of its oldest one.
func (q *Queue) reportStats(now time.Time) {
	type stat struct {
		depth  int
		oldest time.Time
	}
	q.mu.Lock()
	stats := make(map[string]*stat, len(q.boxes))
	for _, m := range q.boxes {
		stats[m.name] = &stat{}
	}
	for _, it := range q.items {
		s := stats[it.box.name]
		s.depth++
		if r := it.received; s.oldest.IsZero() || r.Before(s.oldest) {
			s.oldest = r
		}
	}
	q.mu.Unlock()
	for name, s := range stats {
		var age time.Duration
		if s.depth > 0 {
			age = now.Sub(s.oldest)
		}
		q.opts.Observer.QueueStats(name, s.depth, age)
	}
}

// inflightOf returns the attempts under way for a mailbox (for tests and
// diagnostics).
func (q *Queue) inflightOf(address string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m, ok := q.boxes[mailboxKey(address, "")]; ok {
		return m.inflight
	}
	return 0
}
