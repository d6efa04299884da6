package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Damaged spool entries. A .msg file or a record that cannot be read (a
// disk error, a bad restore, a hand edit, a file the daemon's user cannot
// read, a message cut short) would otherwise be skipped at every start
// and stay in queue/ unseen. settle moves it to damaged/ instead, where
// "graphrelay queue damaged" lists it and the graphrelay_queue_damaged
// metric counts it. A damaged record beside an intact message costs only
// the message's delivery history: the record goes to damaged/ and the
// message is delivered as its envelope line describes it.

const areaDamaged = "damaged"

// damage is why a spool entry cannot be used, naming the file at fault.
type damage struct {
	area, id string
	ext      string // extMsg: the message itself; extState: only its record
	err      error
}

func (d *damage) Error() string {
	return fmt.Sprintf("%s/%s%s: %v", d.area, d.id, d.ext, d.err)
}

func (d *damage) Unwrap() error { return d.err }

// quarantine moves a damaged entry to damaged/: the .msg and its record
// when the message is at fault, else only the record.
func (s *Spool) quarantine(d *damage) error {
	if err := os.MkdirAll(filepath.Join(s.root, areaDamaged), dirPerm); err != nil {
		return fmt.Errorf("create damaged/: %w", err)
	}
	dst := func(ext string) string { return filepath.Join(s.root, areaDamaged, d.id+ext) }
	if d.ext == extMsg {
		s.held.drop(d.id)
		if err := s.fs.Rename(s.msgPath(d.area, d.id), dst(extMsg)); err != nil {
			return fmt.Errorf("quarantine %s/%s%s: %w", d.area, d.id, extMsg, err)
		}
	}
	if err := s.fs.Rename(s.statePath(d.area, d.id), dst(extState)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("quarantine %s/%s%s: %w", d.area, d.id, extState, err)
	}
	if err := s.fs.SyncDir(filepath.Join(s.root, areaDamaged)); err != nil {
		return err
	}
	return s.syncer(d.area).Sync()
}

// DamagedEntry is one quarantined entry, as "queue damaged" lists it.
type DamagedEntry struct {
	ID string `json:"id"`
	// Files are the entry's files in damaged/: <id>.msg and/or <id>.json.
	Files []string `json:"files"`
	// Moved is when the newest of them was quarantined (its change time
	// as the file system reports it: the rename).
	Moved time.Time `json:"moved"`
	// Problem is why it cannot be used, found by reading it again.
	Problem string `json:"problem"`
	// RecordOnly tells that only the record was damaged: the message was
	// delivered (or is waiting) from its envelope line.
	RecordOnly bool `json:"record_only"`
}

// damagedEntries lists damaged/, oldest id first.
func (s *Spool) damagedEntries() ([]DamagedEntry, error) {
	dir := filepath.Join(s.root, areaDamaged)
	list, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read damaged/: %w", err)
	}
	byID := map[string]*DamagedEntry{}
	var ids []string
	for _, e := range list {
		name := e.Name()
		id := strings.TrimSuffix(strings.TrimSuffix(name, extMsg), extState)
		if id == name || !ValidID(id) {
			continue
		}
		d := byID[id]
		if d == nil {
			d = &DamagedEntry{ID: id}
			byID[id] = d
			ids = append(ids, id)
		}
		d.Files = append(d.Files, filepath.Join(dir, name))
		if fi, err := e.Info(); err == nil && fi.ModTime().After(d.Moved) {
			d.Moved = fi.ModTime()
		}
	}
	sort.Strings(ids)
	out := make([]DamagedEntry, 0, len(ids))
	for _, id := range ids {
		d := byID[id]
		_, err := s.read(areaDamaged, id)
		var dm *damage
		switch {
		case errors.As(err, &dm):
			d.Problem = dm.err.Error()
			d.RecordOnly = dm.ext == extState && !s.exists(areaDamaged, id)
		case err == nil:
			d.Problem = "readable now; it was unreadable when it was quarantined"
		case errors.Is(err, fs.ErrNotExist):
			// Only the record is here: its message was delivered from
			// its envelope line, or is still waiting in queue/.
			d.RecordOnly = true
			if b, rerr := os.ReadFile(s.statePath(areaDamaged, id)); rerr != nil {
				d.Problem = rerr.Error()
			} else if _, derr := decodeRecord(b); derr != nil {
				d.Problem = derr.Error()
			} else {
				d.Problem = "readable now; it was unreadable when it was quarantined"
			}
		default:
			d.Problem = err.Error()
		}
		out = append(out, *d)
	}
	return out, nil
}

// countDamaged is the number of entries in damaged/, for the metric.
func (s *Spool) countDamaged() int {
	list, err := os.ReadDir(filepath.Join(s.root, areaDamaged))
	if err != nil {
		return 0
	}
	ids := map[string]bool{}
	for _, e := range list {
		name := e.Name()
		if id := strings.TrimSuffix(strings.TrimSuffix(name, extMsg), extState); id != name && ValidID(id) {
			ids[id] = true
		}
	}
	return len(ids)
}

// Damaged lists the quarantined entries.
func (a *Admin) Damaged() ([]DamagedEntry, error) { return a.spool.damagedEntries() }
