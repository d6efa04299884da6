package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Admin inspects and operates a spool from another process: the
// "graphrelay queue" commands. Reads need no lock, because every file in
// the spool is replaced by rename and a reader sees either the old or the
// new version. Changes go to the running daemon as requests (control.go),
// or, when no daemon holds the lock, are made directly under the lock.
type Admin struct {
	spool *Spool
	// Timeout bounds the wait for the daemon's answer (default 30s).
	Timeout time.Duration
	// Log receives what repairing a crashed spool finds (interrupted
	// attempts, which may have reached Graph) when a change is made
	// without a daemon; nil discards it.
	Log *slog.Logger
}

// OpenAdmin opens the spool at dir without creating anything.
func OpenAdmin(dir string) (*Admin, error) {
	for _, a := range []string{areaQueue, areaFailed, areaCtl} {
		fi, err := os.Stat(filepath.Join(dir, a))
		if err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("%s is not a graphrelay spool (no %s/ directory); check queue.dir or --dir", dir, a)
		}
	}
	return &Admin{spool: newSpool(dir, OSFS{}), Timeout: 30 * time.Second}, nil
}

// List returns the waiting messages, oldest first, and the entries that
// could not be read. An attempt under way (or cut short by a crash, if no
// daemon runs) shows as "started".
func (a *Admin) List() ([]*Record, []error) {
	msgs, problems := a.spool.scan(areaQueue)
	entries, err := readJournal(filepath.Join(a.spool.root, areaJournal))
	if err != nil {
		problems = append(problems, err)
	}
	recs := make([]*Record, 0, len(msgs))
	for _, m := range msgs {
		if e, ok := entries[m.rec.Envelope.ID]; ok {
			applyJournal(m.rec, e, OutcomeStarted)
		}
		recs = append(recs, m.rec)
	}
	return recs, problems
}

// Failed returns the dead letters, oldest first.
func (a *Admin) Failed() ([]*Record, []error) {
	msgs, problems := a.spool.scan(areaFailed)
	recs := make([]*Record, 0, len(msgs))
	for _, m := range msgs {
		recs = append(recs, m.rec)
	}
	return recs, problems
}

// Message is one message as "queue show" prints it.
type Message struct {
	Area   string  // "queue" or "failed"
	Path   string  // its .msg file
	Record *Record //
	Header []byte  // the message's header block
}

// Show reads one message from queue/ or failed/.
func (a *Admin) Show(id string) (*Message, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%q is not a queue id", id)
	}
	for _, area := range []string{areaQueue, areaFailed} {
		st, err := a.spool.read(area, id)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if area == areaQueue {
			if entries, err := readJournal(filepath.Join(a.spool.root, areaJournal)); err == nil {
				if e, ok := entries[id]; ok {
					applyJournal(st.rec, e, OutcomeStarted)
				}
			}
		}
		m := &Message{Area: area, Path: a.spool.msgPath(area, id), Record: st.rec}
		if f, msg, err := a.spool.openMessage(area, id, st.offset, st.rec.Envelope.Size); err == nil {
			m.Header, _, _ = readHeaderBlock(msg, msg.Size())
			f.Close()
		}
		return m, nil
	}
	return nil, fmt.Errorf("no message %s in the queue or in failed/", id)
}

// Do carries out req: through the daemon if one holds the spool, else
// directly.
func (a *Admin) Do(req Request) (Response, error) {
	lock, err := lockSpool(a.spool.root)
	if errors.Is(err, errLocked) {
		return sendControl(a.spool.root, req, a.Timeout)
	}
	if err != nil {
		return Response{}, err
	}
	defer unlockSpool(lock)
	// Bring the spool to the state the next daemon would start from, so
	// that the change is not undone by what a crash left.
	log := a.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := a.spool.settle(log); err != nil {
		return Response{}, err
	}
	return execute(offline{a.spool}, req), nil
}

// offline carries out admin requests when no daemon runs.
type offline struct{ s *Spool }

func (o offline) retry(id string) (string, error) {
	st, err := o.s.read(areaQueue, id)
	if err != nil {
		return "", o.s.notWaiting(id, err)
	}
	st.rec.NextTry = time.Now()
	if err := o.s.writeState(areaQueue, st.rec); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s scheduled for delivery at the next start of graphrelay", id), nil
}

func (o offline) retryAll() (int, error) {
	msgs, _ := o.s.scan(areaQueue)
	n := 0
	for _, m := range msgs {
		m.rec.NextTry = time.Now()
		if err := o.s.writeState(areaQueue, m.rec); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (o offline) deleteMessage(id string) (string, error) {
	for _, area := range []string{areaQueue, areaFailed} {
		if o.s.exists(area, id) {
			if err := o.s.remove(area, id); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s deleted from %s/", id, area), nil
		}
	}
	return "", fmt.Errorf("no message %s in the queue or in failed/", id)
}

func (o offline) requeue(id string) (string, error) {
	if _, err := o.s.requeue(id); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s moved back to the queue; it is sent at the next start of graphrelay", id), nil
}

// requeue moves a dead letter back to queue/ with a fresh max_age. The
// record is updated first, while the message is still in failed/, so a
// crash in between leaves a dead letter, never a half-requeued message.
func (s *Spool) requeue(id string) (*stored, error) {
	st, err := s.read(areaFailed, id)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if s.exists(areaQueue, id) {
				return nil, fmt.Errorf("%s is not a dead letter; it is still waiting in the queue (use retry)", id)
			}
			return nil, fmt.Errorf("no dead letter %s in failed/", id)
		}
		return nil, err
	}
	now := time.Now()
	st.rec.RequeuedAt = now
	st.rec.NextTry = now
	if err := s.writeState(areaFailed, st.rec); err != nil {
		return nil, err
	}
	if err := s.move(id, areaFailed, areaQueue); err != nil {
		return nil, err
	}
	return st, nil
}

// notWaiting explains why id cannot be retried.
func (s *Spool) notWaiting(id string, err error) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if s.exists(areaFailed, id) {
		return fmt.Errorf("%s is a dead letter; use requeue to send it again", id)
	}
	return fmt.Errorf("no message %s in the queue", id)
}

// The running daemon's side of the admin requests. Each works on an item
// checked out of the scheduler, so no attempt can start on it meanwhile.

func (q *Queue) retry(id string) (string, error) {
	it, st, ok := q.checkout(id)
	if !ok {
		return "", q.spool.notWaiting(id, fs.ErrNotExist)
	}
	switch st {
	case stateInFlight:
		return fmt.Sprintf("%s is being delivered right now", id), nil
	case stateCheckedOut:
		return "", fmt.Errorf("%s is busy with another admin request; try again", id)
	}
	now := time.Now()
	rec, err := q.record(it)
	if err != nil {
		q.checkin(it, false)
		return "", err
	}
	rec.NextTry = now
	it.next = now
	err = q.spool.writeState(areaQueue, rec)
	it.onDisk = err == nil
	q.checkin(it, false)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("%s scheduled for delivery now", id)
	if fl := it.box.gate.floor(); fl.After(now) {
		msg += fmt.Sprintf(" (Graph asked to wait for mailbox %s until %s; that is honoured)", it.box.key, fl.Format(time.TimeOnly))
	}
	return msg, nil
}

func (q *Queue) retryAll() (int, error) {
	q.mu.Lock()
	ids := make([]string, 0, len(q.items))
	for id := range q.items {
		ids = append(ids, id)
	}
	q.mu.Unlock()
	n := 0
	for _, id := range ids {
		it, st, ok := q.checkout(id)
		if !ok || st != stateWaiting {
			continue
		}
		now := time.Now()
		rec, err := q.record(it)
		if err != nil {
			q.checkin(it, false)
			return n, err
		}
		rec.NextTry, it.next = now, now
		err = q.spool.writeState(areaQueue, rec)
		it.onDisk = err == nil
		q.checkin(it, false)
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (q *Queue) deleteMessage(id string) (string, error) {
	it, st, ok := q.checkout(id)
	if !ok {
		if q.spool.exists(areaFailed, id) {
			if err := q.spool.remove(areaFailed, id); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s deleted from failed/", id), nil
		}
		return "", fmt.Errorf("no message %s in the queue or in failed/", id)
	}
	switch st {
	case stateInFlight:
		q.mu.Lock()
		it.deleteRequested = true
		q.mu.Unlock()
		return fmt.Sprintf("%s is being delivered right now; it is deleted when this attempt ends (Graph may still accept it)", id), nil
	case stateCheckedOut:
		return "", fmt.Errorf("%s is busy with another admin request; try again", id)
	}
	if err := q.spool.remove(areaQueue, id); err != nil {
		q.checkin(it, false)
		return "", err
	}
	q.checkin(it, true)
	q.log.Info("deleted by admin", "id", id, "mailbox", it.box.name, "size", it.size)
	return fmt.Sprintf("%s deleted from queue/", id), nil
}

func (q *Queue) requeue(id string) (string, error) {
	st, err := q.spool.requeue(id)
	if err != nil {
		return "", err
	}
	rec := st.rec
	_ = q.reserve(1, rec.Envelope.Size, true)
	q.log.Info("requeued by admin", MsgAttrs(rec)...)
	q.add(newItem(rec, st.offset, true))
	return fmt.Sprintf("%s moved back to the queue and scheduled now", id), nil
}
