package queue

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/graphrelay/graphrelay/internal/groupsync"
)

// The journal records each attempt before its request goes out, so that a
// crash leaves an honest count. Writing it into the message's own record
// would cost a file creation, an fsync and a rename per attempt; an append
// to one shared file costs a write, and the fsync is group-committed with
// every other attempt starting at the same time. An entry is needed only
// until the attempt's outcome is on disk (the message is gone, or its
// .json record names the attempt); segments whose attempts have all ended
// are deleted, and at startup every remaining entry is folded into the
// records before the segments are removed.

// journalSegmentMax is the size at which a new segment is started.
const journalSegmentMax = 1 << 20

// journalEntry is one line of a segment.
type journalEntry struct {
	ID    string    `json:"id"`
	N     int       `json:"n"`
	Start time.Time `json:"start"`
	// NextTry is the pessimistic next try set with the attempt: where a
	// crash leaves the message.
	NextTry time.Time `json:"next_try"`
}

type journal struct {
	dir string
	fs  FS

	mu  sync.Mutex
	cur *segment
	seq uint64
}

// segment is one journal file.
type segment struct {
	path    string
	f       File
	size    int64
	pending int // attempts begun in this segment and not yet ended
	sync    *groupsync.Group
}

// openJournal starts a new segment after the ones that exist.
func openJournal(dir string, fs FS) (*journal, error) {
	names, err := segmentNames(dir)
	if err != nil {
		return nil, err
	}
	j := &journal{dir: dir, fs: fs}
	if len(names) > 0 {
		fmt.Sscanf(filepath.Base(names[len(names)-1]), "%d", &j.seq)
	}
	if err := j.rotate(); err != nil {
		return nil, err
	}
	return j, nil
}

// segmentNames lists the segments in order.
func segmentNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read journal/: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// rotate starts a new segment. Callers hold j.mu, or run before anyone
// else can.
func (j *journal) rotate() error {
	j.seq++
	path := filepath.Join(j.dir, fmt.Sprintf("%016d.log", j.seq))
	f, err := j.fs.Append(path)
	if err != nil {
		return fmt.Errorf("start journal segment: %w", err)
	}
	if err := j.fs.SyncDir(j.dir); err != nil {
		f.Close()
		return fmt.Errorf("start journal segment: %w", err)
	}
	old := j.cur
	seg := &segment{path: path, f: f}
	seg.sync = groupsync.New(f.Sync)
	j.cur = seg
	if old != nil && old.pending == 0 {
		j.drop(old)
	}
	return nil
}

// begin durably records that an attempt starts. The returned segment must
// be handed to end once the attempt's outcome is on disk.
func (j *journal) begin(e journalEntry) (*segment, error) {
	line, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	line = append(line, '\n')
	j.mu.Lock()
	if j.cur.size >= journalSegmentMax {
		if err := j.rotate(); err != nil {
			j.mu.Unlock()
			return nil, err
		}
	}
	seg := j.cur
	_, err = seg.f.Write(line)
	seg.size += int64(len(line))
	seg.pending++
	if err != nil {
		// A partial line would spoil the next one: continue in a new
		// segment. The failed entry's attempt is not made.
		if rerr := j.rotate(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	j.mu.Unlock()
	if err == nil {
		err = seg.sync.Sync()
	}
	if err != nil {
		j.end(seg)
		return nil, fmt.Errorf("journal: %w", err)
	}
	return seg, nil
}

// end releases an attempt's entry; a segment whose attempts have all
// ended, and that is no longer written, is deleted.
func (j *journal) end(seg *segment) {
	j.mu.Lock()
	defer j.mu.Unlock()
	seg.pending--
	if seg != j.cur && seg.pending == 0 {
		j.drop(seg)
	}
}

func (j *journal) drop(seg *segment) {
	seg.f.Close()
	_ = j.fs.Remove(seg.path)
}

// close closes the current segment. It stays on disk if attempts are
// still pending in it; the next start replays it.
func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cur != nil {
		j.cur.f.Close()
		if j.cur.pending == 0 {
			_ = j.fs.Remove(j.cur.path)
		}
		j.cur = nil
	}
}

// readJournal returns the latest entry per message in every segment in
// dir. A torn last line, from a crash during a write, is skipped: its
// attempt had not been made yet.
func readJournal(dir string) (map[string]journalEntry, error) {
	names, err := segmentNames(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]journalEntry{}
	for _, name := range names {
		f, err := openRead(name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // ended and deleted since the listing
			}
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e journalEntry
			if json.Unmarshal(sc.Bytes(), &e) != nil || !ValidID(e.ID) {
				continue
			}
			if prev, ok := out[e.ID]; !ok || e.N > prev.N {
				out[e.ID] = e
			}
		}
		f.Close()
	}
	return out, nil
}

// applyJournal adds to rec the attempts the journal knows and the record
// does not: attempts whose outcome never reached the record, because the
// daemon died during them (or, for a reader, because they run now). It
// reports whether rec changed.
func applyJournal(rec *Record, e journalEntry, outcome string) bool {
	changed := false
	for n := len(rec.Attempts) + 1; n <= e.N; n++ {
		a := Attempt{N: n, Outcome: outcome}
		if n == e.N {
			a.Start = e.Start
		}
		if outcome == OutcomeInterrupted {
			a.Ambiguous = true
			a.Error = "attempt interrupted: graphrelay stopped before Graph answered"
		}
		rec.Attempts = append(rec.Attempts, a)
		changed = true
	}
	if changed && e.NextTry.After(rec.NextTry) {
		rec.NextTry = e.NextTry
	}
	return changed
}
