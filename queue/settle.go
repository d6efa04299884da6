package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// settle brings a spool that a crash may have interrupted to a consistent
// state, and returns the messages waiting in queue/. It runs with the
// spool lock held, before an admin command changes a spool no daemon
// holds. The daemon does the same in two parts (see backlog): the quick
// one before it accepts mail, the reading of every message after.
//
//  1. recover: tmp/, spare/, leftover temporary records, and records
//     separated from their message by a move cut short.
//  2. The journal's entries are folded into the records: an attempt the
//     journal knows and the record does not was interrupted, and may have
//     reached Graph. The journal segments are then removed.
//  3. Entries that cannot be read are quarantined in damaged/; a message
//     whose record alone is damaged is kept, as its envelope line says.
//  4. A message whose record is marked dead but which is still in queue/
//     (a crash during the move to failed/) is moved.
func (s *Spool) settle(log *slog.Logger) ([]*stored, error) {
	b, err := s.openBacklog(log)
	if err != nil {
		return nil, err
	}
	var live []*stored
	for _, id := range b.ids {
		m, err := b.load(id)
		if err != nil {
			return nil, err
		}
		if m != nil {
			live = append(live, m)
		}
	}
	return live, b.finish()
}

// backlog is the messages a previous run left in queue/, listed and with
// the journal read, but not read yet. Reading 10,000 of them takes
// seconds, which the daemon spends accepting mail rather than refusing
// connections: everything a new message depends on (tmp/, spare/, the
// journal of the previous run) is settled before the listing, and the
// listing is taken before the first new message can arrive, so new
// messages are never in it.
type backlog struct {
	s        *Spool
	log      *slog.Logger
	ids      []string
	entries  map[string]journalEntry
	segments []string // the previous run's journal, removed by finish
}

// openBacklog does the quick part of settle: step 1, reading the
// journal, and listing queue/.
func (s *Spool) openBacklog(log *slog.Logger) (*backlog, error) {
	fixed, err := s.recover()
	if err != nil {
		return nil, fmt.Errorf("recover spool: %w", err)
	}
	if fixed > 0 {
		log.Info("repaired leftovers of an interrupted run in the spool", "count", fixed)
	}
	jdir := filepath.Join(s.root, areaJournal)
	b := &backlog{s: s, log: log}
	if b.segments, err = segmentNames(jdir); err != nil {
		return nil, err
	}
	if b.entries, err = readJournal(jdir); err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	if b.ids, err = s.ids(areaQueue); err != nil {
		return nil, err
	}
	return b, nil
}

// load reads one listed message, folds in its journal entry, and
// quarantines or moves it as steps 2 to 4 say. It returns nil for a
// message that is not waiting (gone, damaged, dead), and an error only
// when the journal entry cannot be written into the record, which must
// stop the start: the segments would otherwise be removed with it.
func (b *backlog) load(id string) (*stored, error) {
	s, log := b.s, b.log
	m := s.loadOne(log, id)
	if m == nil {
		return nil, nil
	}
	rec := m.rec
	if e, ok := b.entries[id]; ok && applyJournal(rec, e, OutcomeInterrupted) {
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
		return nil, nil
	}
	return m, nil
}

// finish removes the previous run's journal once every listed message
// was loaded: each entry is now in a record, or its message is gone. A
// start cut short keeps them, for the next one.
func (b *backlog) finish() error {
	for _, n := range b.segments {
		if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove replayed journal segment: %w", err)
		}
	}
	return nil
}

// recover clears what an interrupted process left, before anything is
// delivered and with the spool lock held:
//   - tmp/ is emptied: new messages whose 250 was never sent;
//   - spare/ files are emptied and offered for reuse;
//   - <id>.json.tmp files of interrupted record updates are removed;
//   - a <id>.json follows its <id>.msg: after a crash between the two
//     renames of a move it is moved next to it, and without any .msg (a
//     deletion cut short) it is removed.
func (s *Spool) recover() (fixed int, err error) {
	tmp := filepath.Join(s.root, areaTmp)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return 0, fmt.Errorf("read tmp/: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			return fixed, fmt.Errorf("remove leftover %s: %w", e.Name(), err)
		}
		fixed++
	}
	if err := s.spares.load(); err != nil {
		return fixed, err
	}
	other := map[string]string{areaQueue: areaFailed, areaFailed: areaQueue}
	for _, area := range []string{areaQueue, areaFailed} {
		entries, err := os.ReadDir(filepath.Join(s.root, area))
		if err != nil {
			return fixed, fmt.Errorf("read %s/: %w", area, err)
		}
		for _, e := range entries {
			name := e.Name()
			path := filepath.Join(s.root, area, name)
			if strings.HasSuffix(name, extTmp) {
				if err := os.Remove(path); err != nil {
					return fixed, err
				}
				fixed++
				continue
			}
			id, ok := strings.CutSuffix(name, extState)
			if !ok || s.exists(area, id) {
				continue
			}
			if s.exists(other[area], id) {
				err = s.fs.Rename(path, s.statePath(other[area], id))
			} else {
				err = os.Remove(path)
			}
			if err != nil {
				return fixed, fmt.Errorf("repair record %s: %w", path, err)
			}
			fixed++
		}
	}
	for _, area := range []string{areaQueue, areaFailed} {
		if err := s.syncer(area).Sync(); err != nil {
			return fixed, err
		}
	}
	ctl, _ := filepath.Glob(filepath.Join(s.root, areaCtl, "*"+extTmp))
	for _, m := range ctl {
		_ = os.Remove(m)
	}
	return fixed, nil
}

// loadOne reads one message in queue/, quarantining it if it cannot be
// read so that it is neither skipped unseen at every start nor delivered
// damaged. It returns nil when the message is not to be delivered.
func (s *Spool) loadOne(log *slog.Logger, id string) *stored {
	m, err := s.read(areaQueue, id)
	var d *damage
	switch {
	case err == nil:
		return m
	case errors.As(err, &d):
		path := filepath.Join(s.root, areaQueue, id+d.ext)
		if qerr := s.quarantine(d); qerr != nil {
			log.Error("spool entry cannot be read nor moved to damaged/; it is skipped until it is fixed by hand",
				"file", path, "err", err, "quarantine_err", qerr)
			return nil
		}
		if d.ext == extState {
			log.Warn("message record cannot be read; it was moved to damaged/ and the message is delivered as it was accepted, without its attempt history",
				"id", id, "file", path, "err", d.err,
				"hint", "nothing to do for the message; inspect or delete the record with graphrelay queue damaged")
			return m
		}
		log.Error("spool entry cannot be read; it was moved to damaged/ and is not delivered",
			"id", id, "file", path, "err", d.err,
			"hint", "see graphrelay queue damaged; fix the file (permissions, a restore from backup) and move it back into queue/ with the daemon stopped, or delete it")
	case errors.Is(err, fs.ErrNotExist):
		// Removed since the listing.
	default:
		log.Error("spool entry skipped; it is kept for the graphrelay that wrote it", "id", id, "err", err)
	}
	return nil
}
