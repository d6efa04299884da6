package queue

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func newTestSpool(t *testing.T, fsys FS) *Spool {
	t.Helper()
	s, err := openSpool(t.TempDir(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRecord() *Record {
	env := testEnv("alerts@example.com", "printer@example.com")
	return &Record{Version: recordVersion, Envelope: *env, NextTry: time.Now(), Attempts: []Attempt{}}
}

func TestSpoolCreateWritesOneFile(t *testing.T) {
	s := newTestSpool(t, nil)
	rec := newRecord()
	id := rec.Envelope.ID
	msg := testMessage("hello")
	size, offset, err := s.create(rec, strings.NewReader(msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(msg)) {
		t.Errorf("size = %d, want %d", size, len(msg))
	}
	raw, err := os.ReadFile(filepath.Join(s.root, "queue", id+".msg"))
	if err != nil {
		t.Fatal(err)
	}
	line, rest, _ := strings.Cut(string(raw), "\n")
	if rest != msg || int64(len(line)+1) != offset {
		t.Errorf("file = envelope line of %d bytes + %q; want the message after the line", len(line), rest)
	}
	if want := fmt.Sprintf(`"size":%19d`, len(msg)); !strings.Contains(line, want) {
		t.Errorf("the envelope line does not carry the message's length as %q: %s", want, line)
	}
	st, err := s.read(areaQueue, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.rec.Envelope.ID != id || st.rec.Envelope.Size != size || st.offset != offset || st.rec.Envelope.Recipients[1] != "bob@example.com" {
		t.Errorf("read back %+v offset %d", st.rec.Envelope, st.offset)
	}
	f, sec, err := s.openMessage(areaQueue, id, st.offset, size)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(sec)
	f.Close()
	if string(got) != msg {
		t.Errorf("message section = %q", got)
	}
	fi, _ := os.Stat(filepath.Join(s.root, "queue", id+".msg"))
	// Windows has no mode bits; the spool's ACL is tested there instead.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("message file mode %v; mail must not be readable by others", fi.Mode().Perm())
	}
	if left := listTree(filepath.Join(s.root, "tmp")); len(left) != 0 {
		t.Errorf("tmp/ still holds %v", left)
	}
}

// writeCountFS counts the writes to message files.
type writeCountFS struct {
	OSFS
	mu              sync.Mutex
	writes, writeAt int
}

func (c *writeCountFS) wrap(f File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &countFile{File: f, c: c}, nil
}

func (c *writeCountFS) Create(path string) (File, error) { return c.wrap(c.OSFS.Create(path)) }
func (c *writeCountFS) Reuse(path string, truncate bool) (File, error) {
	return c.wrap(c.OSFS.Reuse(path, truncate))
}

type countFile struct {
	File
	c *writeCountFS
}

func (f *countFile) Write(p []byte) (int, error) {
	f.c.mu.Lock()
	f.c.writes++
	f.c.mu.Unlock()
	return f.File.Write(p)
}

func (f *countFile) WriteAt(p []byte, off int64) (int, error) {
	f.c.mu.Lock()
	f.c.writeAt++
	f.c.mu.Unlock()
	return f.File.WriteAt(p, off)
}

// lineReader hands out one line per Read, as the SMTP DATA reader does.
type lineReader struct{ s string }

func (r *lineReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	line, _, _ := strings.Cut(r.s, "\n")
	n := copy(p, r.s[:min(len(line)+1, len(r.s))])
	r.s = r.s[n:]
	return n, nil
}

// TestSpoolWritesThroughABuffer: the message arrives a line per Read, and
// goes to disk in as few writes as the buffer allows, with its length in
// the envelope line either way.
func TestSpoolWritesThroughABuffer(t *testing.T) {
	for _, tt := range []struct {
		name            string
		size            int
		writes, writeAt int
	}{
		{"4 KB notification", 4 << 10, 1, 0},
		{"1 MB scan", 1 << 20, (1<<20)/spoolBufSize + 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &writeCountFS{}
			s := newTestSpool(t, c)
			var b strings.Builder
			for b.Len() < tt.size {
				fmt.Fprintf(&b, "line %d of the message, long enough to look like mail\r\n", b.Len())
			}
			msg := b.String()[:tt.size]
			rec := newRecord()
			size, _, err := s.create(rec, &lineReader{msg}, nil)
			if err != nil || size != int64(len(msg)) {
				t.Fatalf("create = %d, %v", size, err)
			}
			if c.writes != tt.writes || c.writeAt != tt.writeAt {
				t.Errorf("%d writes and %d WriteAt for %d bytes, want %d and %d", c.writes, c.writeAt, len(msg), tt.writes, tt.writeAt)
			}
			st, err := s.read(areaQueue, rec.Envelope.ID)
			if err != nil || st.rec.Envelope.Size != int64(len(msg)) {
				t.Fatalf("read back: %v, size %v", err, st)
			}
			raw, _ := os.ReadFile(s.msgPath(areaQueue, rec.Envelope.ID))
			if string(raw[st.offset:]) != msg {
				t.Errorf("the message on disk differs from what was sent")
			}
		})
	}
}

// TestSpoolReusesSpareFiles: a removed message's file is emptied and used
// for the next one, so steady delivery creates no files.
func TestSpoolReusesSpareFiles(t *testing.T) {
	f := newFaultFS()
	s := newTestSpool(t, f)
	first := newRecord()
	if _, _, err := s.create(first, strings.NewReader(testMessage("one")+strings.Repeat("x", 5000)), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.remove(areaQueue, first.Envelope.ID); err != nil {
		t.Fatal(err)
	}
	spares, _ := os.ReadDir(filepath.Join(s.root, "spare"))
	if len(spares) != 1 {
		t.Fatalf("spare/ holds %d files, want the recycled one", len(spares))
	}
	if fi, _ := spares[0].Info(); fi.Size() != 0 {
		t.Errorf("a spare holds %d bytes; a delivered message must not linger", fi.Size())
	}
	f.set("create:msg", syscall.EMFILE) // a new file would fail now
	second := newRecord()
	if _, _, err := s.create(second, strings.NewReader(testMessage("two")), nil); err != nil {
		t.Fatalf("the spare was not reused: %v", err)
	}
	st, err := s.read(areaQueue, second.Envelope.ID)
	if err != nil || st.rec.Envelope.Size != int64(len(testMessage("two"))) {
		t.Fatalf("reused file reads back %+v, %v", st, err)
	}
	if spares, _ := os.ReadDir(filepath.Join(s.root, "spare")); len(spares) != 0 {
		t.Errorf("spare/ still holds %d files", len(spares))
	}
}

// TestSpoolFailuresLeaveNothing injects a fault at every step of the
// write path: each must fail with a *SpoolError of the right kind and
// leave no file behind.
func TestSpoolFailuresLeaveNothing(t *testing.T) {
	eio := syscall.EIO
	for _, tc := range []struct {
		name    string
		setup   func(*faultFS)
		storage bool // InsufficientStorage
		spare   bool // write into a recycled file
	}{
		{"disk full during the message", func(f *faultFS) { f.setBudget(100) }, true, false},
		{"disk full in a reused file", func(f *faultFS) { f.setBudget(100) }, true, true},
		{"filesystem quota", func(f *faultFS) { f.set("write:msg", syscall.EDQUOT) }, true, false},
		{"permission denied", func(f *faultFS) { f.set("create:msg", syscall.EACCES) }, false, false},
		{"read-only filesystem", func(f *faultFS) { f.set("create:msg", syscall.EROFS) }, false, false},
		{"fsync of the message fails", func(f *faultFS) { f.set("sync:msg", eio) }, false, false},
		{"fsync of a reused file fails", func(f *faultFS) { f.set("sync:spare", eio) }, false, true},
		{"rename into queue fails", func(f *faultFS) { f.set("rename:msg", eio) }, false, false},
		{"fsync of queue/ fails after the rename", func(f *faultFS) { f.set("syncdir:queue", eio) }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaultFS()
			s := newTestSpool(t, f)
			if tc.spare {
				r := newRecord()
				s.create(r, strings.NewReader("x"), nil)
				s.remove(areaQueue, r.Envelope.ID)
			}
			tc.setup(f)
			big := strings.Repeat("x", 70_000) // several copy chunks
			_, _, err := s.create(newRecord(), strings.NewReader(testMessage("t")+big), nil)
			var se *SpoolError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want *SpoolError", err, err)
			}
			if se.InsufficientStorage() != tc.storage {
				t.Errorf("InsufficientStorage() = %v, want %v (err %v)", se.InsufficientStorage(), tc.storage, err)
			}
			if se.Hint() == "" {
				t.Error("no hint for the admin")
			}
			if _, ok := error(se).(interface{ Permanent() bool }); ok {
				t.Error("a spool error must never claim to be permanent")
			}
			if left := messageFiles(s.root); len(left) != 0 {
				t.Errorf("partial files left: %v", left)
			}
		})
	}
}

// A stream error (size limit, timeout) passes through unwrapped, so that
// smtpd names it in its reply, and also leaves nothing.
func TestSpoolStreamErrorPassesThrough(t *testing.T) {
	s := newTestSpool(t, nil)
	boom := errors.New("client went away")
	_, _, err := s.create(newRecord(), &failingReader{data: testMessage("x"), err: boom}, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	var se *SpoolError
	if errors.As(err, &se) {
		t.Errorf("a stream error was reported as a spool error: %v", err)
	}
	if left := messageFiles(s.root); len(left) != 0 {
		t.Errorf("partial files left: %v", left)
	}
}

type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestSettleRepairsACrash builds by hand what kill -9 can leave at each
// step, and checks that the next start makes it consistent.
func TestSettleRepairsACrash(t *testing.T) {
	s := newTestSpool(t, nil)
	mk := func() *Record {
		r := newRecord()
		if _, _, err := s.create(r, strings.NewReader(testMessage(r.Envelope.ID)), nil); err != nil {
			t.Fatal(err)
		}
		return r
	}
	keep, interrupted, halfDead, halfMoved, halfDeleted := mk(), mk(), mk(), mk(), mk()
	// An acceptance cut short, a spare not yet emptied, a record update cut short.
	os.WriteFile(filepath.Join(s.root, "tmp", "0123456789abcdefghjkmnp.msg"), []byte("half"), 0o600)
	os.WriteFile(filepath.Join(s.root, "spare", "sdirty"), []byte("old mail"), 0o600)
	os.WriteFile(filepath.Join(s.root, "queue", keep.Envelope.ID+".json.tmp"), []byte("{"), 0o600)
	// An attempt in flight at the kill: only the journal knows it.
	j, err := openJournal(filepath.Join(s.root, "journal"), OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	next := time.Now().Add(time.Hour)
	if _, err := j.begin(journalEntry{ID: interrupted.Envelope.ID, N: 1, Start: time.Now(), NextTry: next}); err != nil {
		t.Fatal(err)
	}
	j.cur.f.Close() // as the kill does; Windows cannot delete a file still open
	// A dead letter whose move had not started, and one whose .msg had
	// moved but not its record.
	halfDead.Dead = &DeadLetter{At: time.Now(), Reason: "permanent"}
	s.writeState(areaQueue, halfDead)
	halfMoved.Dead = &DeadLetter{At: time.Now(), Reason: "permanent"}
	s.writeState(areaQueue, halfMoved)
	os.Rename(s.msgPath(areaQueue, halfMoved.Envelope.ID), s.msgPath(areaFailed, halfMoved.Envelope.ID))
	// A deletion that removed the .msg but not the record.
	s.writeState(areaQueue, halfDeleted)
	os.Remove(s.msgPath(areaQueue, halfDeleted.Envelope.ID))

	live, err := s.settle(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]*Record{}
	for _, m := range live {
		ids[m.rec.Envelope.ID] = m.rec
	}
	if len(ids) != 2 || ids[keep.Envelope.ID] == nil || ids[interrupted.Envelope.ID] == nil {
		t.Fatalf("live after settle = %v", ids)
	}
	r := ids[interrupted.Envelope.ID]
	if len(r.Attempts) != 1 || r.Attempts[0].Outcome != OutcomeInterrupted || !r.Attempts[0].Ambiguous || !r.NextTry.Equal(next) {
		t.Errorf("interrupted attempt = %+v next %v", r.Attempts, r.NextTry)
	}
	if st, err := s.read(areaQueue, interrupted.Envelope.ID); err != nil || len(st.rec.Attempts) != 1 {
		t.Errorf("the interrupted attempt is not on disk: %+v %v", st, err)
	}
	for _, r := range []*Record{halfDead, halfMoved} {
		st, err := s.read(areaFailed, r.Envelope.ID)
		if err != nil || st.rec.Dead == nil {
			t.Errorf("dead letter %s not completed: %+v %v", r.Envelope.ID, st, err)
		}
	}
	want := []string{
		"failed/" + halfDead.Envelope.ID + ".json", "failed/" + halfDead.Envelope.ID + ".msg",
		"failed/" + halfMoved.Envelope.ID + ".json", "failed/" + halfMoved.Envelope.ID + ".msg",
		"queue/" + interrupted.Envelope.ID + ".json", "queue/" + interrupted.Envelope.ID + ".msg",
		"queue/" + keep.Envelope.ID + ".msg",
	}
	got := messageFiles(s.root)
	if strings.Join(sortedCopy(got), ",") != strings.Join(sortedCopy(want), ",") {
		t.Errorf("spool after settle:\n got %v\nwant %v", got, want)
	}
	if segs, _ := segmentNames(filepath.Join(s.root, "journal")); len(segs) != 0 {
		t.Errorf("journal segments left: %v", segs)
	}
}

// TestJournalSegmentsAreDropped: a segment goes once it is full and all
// its attempts have ended. Filling a segment takes 20,000 entries, so the
// test skips fsync: rotation is its subject, not durability, and 20,000
// real fsyncs took half a minute.
func TestJournalSegmentsAreDropped(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir, noSyncFS{})
	if err != nil {
		t.Fatal(err)
	}
	var held *segment
	for i := range 20000 {
		seg, err := j.begin(journalEntry{ID: "0000000000abcdefghjkmnp", N: i + 1, Start: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			held = seg
			continue
		}
		j.end(seg)
	}
	segs, _ := segmentNames(dir)
	if len(segs) != 2 {
		t.Errorf("%d segments while the first holds an attempt; want it and the current one", len(segs))
	}
	j.end(held)
	if segs, _ = segmentNames(dir); len(segs) != 1 {
		t.Errorf("%d segments after every attempt ended, want 1", len(segs))
	}
	j.close()
	if segs, _ = segmentNames(dir); len(segs) != 0 {
		t.Errorf("%d segments after close with nothing pending", len(segs))
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestRemoveLeavesNoRecord: removing a message removes its record when
// one was written, and does not look for one that never was.
func TestRemoveLeavesNoRecord(t *testing.T) {
	s := newTestSpool(t, nil)
	plain, failed := newRecord(), newRecord()
	for _, r := range []*Record{plain, failed} {
		if _, _, err := s.create(r, strings.NewReader(testMessage("x")), nil); err != nil {
			t.Fatal(err)
		}
	}
	failed.Attempts = append(failed.Attempts, Attempt{N: 1, Outcome: OutcomeTransient})
	if err := s.writeState(areaQueue, failed); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Record{plain, failed} {
		if err := s.remove(areaQueue, r.Envelope.ID); err != nil {
			t.Fatal(err)
		}
	}
	if left := listTree(filepath.Join(s.root, "queue")); len(left) != 0 {
		t.Errorf("queue/ still holds %v", left)
	}
}

// TestFreshMessageIsReadFromMemoryOnce: the first read of a small message
// just spooled comes from memory, identical to the file; every later read
// comes from the file, and a large message always does.
func TestFreshMessageIsReadFromMemoryOnce(t *testing.T) {
	s := newTestSpool(t, nil)
	small := newRecord()
	msg := testMessage("fresh")
	size, offset, err := s.create(small, strings.NewReader(msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Hide the file: only a read from memory can succeed now.
	path := s.msgPath(areaQueue, small.Envelope.ID)
	os.Rename(path, path+".hidden")
	c, r, err := s.openMessage(areaQueue, small.Envelope.ID, offset, size)
	if err != nil {
		t.Fatalf("first read of a fresh message: %v", err)
	}
	got, _ := io.ReadAll(r)
	c.Close()
	if string(got) != msg {
		t.Errorf("from memory %q, want %q", got, msg)
	}
	if _, _, err := s.openMessage(areaQueue, small.Envelope.ID, offset, size); err == nil {
		t.Error("the second read did not go to the file")
	}
	os.Rename(path+".hidden", path)
	c, r, err = s.openMessage(areaQueue, small.Envelope.ID, offset, size)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(r)
	c.Close()
	if string(got) != msg {
		t.Errorf("from the file %q", got)
	}

	large := newRecord()
	big := strings.Repeat("x", freshMaxMsg+1)
	size, offset, err = s.create(large, strings.NewReader(big), nil)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(s.msgPath(areaQueue, large.Envelope.ID))
	if _, _, err := s.openMessage(areaQueue, large.Envelope.ID, offset, size); err == nil {
		t.Error("a message over freshMaxMsg was served from memory")
	}
}

// createCountFS counts files created outside spare/.
type createCountFS struct {
	OSFS
	mu      sync.Mutex
	created []string
}

func (c *createCountFS) Create(path string) (File, error) {
	if filepath.Base(filepath.Dir(path)) != "spare" {
		c.mu.Lock()
		c.created = append(c.created, path)
		c.mu.Unlock()
	}
	return c.OSFS.Create(path)
}

// TestSpareFillerKeepsCreationOffThePath: with the filler running, the
// pool is stocked, and messages taken from it are refilled in the
// background, so that spooling creates no file of its own.
func TestSpareFillerKeepsCreationOffThePath(t *testing.T) {
	c := &createCountFS{}
	s := newTestSpool(t, c)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { s.spares.fill(stop); close(done) }()
	defer func() { close(stop); <-done }()
	stocked := func() bool {
		s.spares.mu.Lock()
		defer s.spares.mu.Unlock()
		return len(s.spares.files) >= spareHigh
	}
	eventually(t, time.Minute, "the pool stocked", stocked)
	// Take the pool below its low mark; the filler restocks it.
	for range spareHigh - spareLow + 1 {
		if _, _, err := s.create(newRecord(), strings.NewReader(testMessage("x")), nil); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, "the pool restocked", stocked)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.created) != 0 {
		t.Errorf("spooling created %d files of its own: %v", len(c.created), c.created)
	}
}
