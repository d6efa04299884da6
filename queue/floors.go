package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Retry-After floors survive a restart. A 429's Retry-After holds back
// the whole mailbox, but only the throttled message's own record carries
// its next try; without this file a restarted daemon (an upgrade, a
// crash loop) would send every other waiting message for that mailbox at
// once, which Exchange answers with longer throttling. The file is
// rewritten, durably, each time a floor is raised, which happens only on
// a throttled attempt, and read when the spool is loaded.

const fileFloors = "floors.json"

// maxFloor caps a floor, live or loaded. Graph's Retry-After is seconds
// to minutes; a floor beyond an hour is a bogus header or a clock that
// jumped, and must not hold a mailbox for longer.
const maxFloor = time.Hour

// floorFile is floors.json.
type floorFile struct {
	Version int          `json:"version"`
	Floors  []floorEntry `json:"floors"`
}

type floorEntry struct {
	Mailbox   string    `json:"mailbox"`
	NotBefore time.Time `json:"not_before"`
}

// raiseFloor raises m's Retry-After floor to t (capped at maxFloor from
// now) and records it on disk before returning, so that no request for
// the mailbox leaves before t, even after a restart. A failure to record
// it is logged: the floor still holds in memory.
func (q *Queue) raiseFloor(m *mailbox, t, now time.Time) time.Duration {
	if limit := now.Add(maxFloor); t.After(limit) {
		t = limit
	}
	q.floorMu.Lock()
	defer q.floorMu.Unlock()
	added := m.gate.raise(t, now)
	if added == 0 {
		return 0 // the floor on disk already holds t
	}
	f := floorFile{Version: 1}
	q.mu.Lock()
	for _, b := range q.order {
		if fl := b.gate.floor(); fl.After(now) {
			f.Floors = append(f.Floors, floorEntry{Mailbox: b.name, NotBefore: fl})
		}
	}
	q.mu.Unlock()
	sort.Slice(f.Floors, func(i, j int) bool { return f.Floors[i].Mailbox < f.Floors[j].Mailbox })
	if err := q.spool.writeFloors(&f); err != nil {
		q.log.Error("cannot record the mailbox's Retry-After floor; it holds until a restart only",
			"mailbox", m.name, "not_before", t, "err", err, "hint", (&SpoolError{Err: err}).Hint())
	}
	return added
}

// loadFloors applies the recorded floors that have not passed yet.
func (q *Queue) loadFloors() {
	f, err := q.spool.readFloors()
	if err != nil {
		q.log.Warn("cannot read the recorded Retry-After floors; throttled mailboxes may be retried early",
			"file", filepath.Join(q.opts.Dir, fileFloors), "err", err)
		return
	}
	now := time.Now()
	for _, e := range f.Floors {
		if e.Mailbox == "" || !e.NotBefore.After(now) {
			continue
		}
		t := e.NotBefore
		if limit := now.Add(maxFloor); t.After(limit) {
			t = limit
		}
		q.mu.Lock()
		q.mailboxFor(e.Mailbox, "").gate.raise(t, now)
		q.mu.Unlock()
		q.log.Info("mailbox still throttled by Graph's Retry-After from before the restart; no request for it starts before the floor",
			"mailbox", e.Mailbox, "not_before", t)
	}
}

// writeFloors replaces floors.json durably.
func (s *Spool) writeFloors(f *floorFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	final := filepath.Join(s.root, fileFloors)
	tmp := final + extTmp
	_ = s.fs.Remove(tmp)
	w, err := s.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", fileFloors, err)
	}
	_, err = w.Write(append(b, '\n'))
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.fs.Rename(tmp, final)
	}
	if err == nil {
		err = s.fs.SyncDir(s.root)
	}
	if err != nil {
		_ = s.fs.Remove(tmp)
		return fmt.Errorf("write %s: %w", fileFloors, err)
	}
	return nil
}

// readFloors reads floors.json; a missing file has no floors.
func (s *Spool) readFloors() (*floorFile, error) {
	b, err := os.ReadFile(filepath.Join(s.root, fileFloors))
	if errors.Is(err, fs.ErrNotExist) {
		return &floorFile{}, nil
	}
	if err != nil {
		return nil, err
	}
	var f floorFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	return &f, nil
}
