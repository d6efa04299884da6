package queue

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// settle brings a spool that a crash may have interrupted to a consistent
// state, and returns the messages waiting in queue/. It runs with the
// spool lock held, before anything is delivered: at the daemon's start,
// and before an admin command changes a spool no daemon holds.
//
//  1. recover: tmp/, spare/, leftover temporary records, and records
//     separated from their message by a move cut short.
//  2. The journal's entries are folded into the records: an attempt the
//     journal knows and the record does not was interrupted, and may have
//     reached Graph. The journal segments are then removed.
//  3. A message whose record is marked dead but which is still in queue/
//     (a crash during the move to failed/) is moved.
func (s *Spool) settle(log *slog.Logger) ([]*stored, error) {
	fixed, err := s.recover()
	if err != nil {
		return nil, fmt.Errorf("recover spool: %w", err)
	}
	if fixed > 0 {
		log.Info("repaired leftovers of an interrupted run in the spool", "count", fixed)
	}
	jdir := filepath.Join(s.root, areaJournal)
	entries, err := readJournal(jdir)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	msgs, problems := s.scan(areaQueue)
	for _, p := range problems {
		log.Error("spool entry skipped; inspect it by hand", "err", p)
	}
	var live []*stored
	for _, m := range msgs {
		rec := m.rec
		id := rec.Envelope.ID
		if e, ok := entries[id]; ok && applyJournal(rec, e, OutcomeInterrupted) {
			last := rec.LastAttempt()
			log.Warn("an attempt was interrupted by a crash or kill; Graph may have accepted the message, so it may arrive twice",
				"id", id, "attempt", last.N, "started", last.Start, "mailbox", rec.Envelope.Mailbox.Address)
			if err := s.writeState(areaQueue, rec); err != nil {
				return nil, fmt.Errorf("record the interrupted attempt of %s: %w", id, err)
			}
		}
		if rec.Dead != nil && !rec.Dead.At.Before(rec.RequeuedAt) {
			if err := s.move(id, areaQueue, areaFailed); err != nil {
				log.Error("cannot finish moving a dead letter to failed/", "id", id, "err", err)
			}
			continue
		}
		live = append(live, m)
	}
	// Every entry is now in a record, or its message is gone.
	names, err := segmentNames(jdir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if err := os.Remove(n); err != nil {
			return nil, fmt.Errorf("remove replayed journal segment: %w", err)
		}
	}
	return live, nil
}
