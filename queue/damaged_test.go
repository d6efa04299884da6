package queue

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestDamagedEntriesAreQuarantined starts a daemon on a spool holding one
// intact message and one of each kind of damage, and checks what becomes
// of each: the intact message and the one with a torn record are
// delivered, the rest are moved to damaged/, counted, listed by the admin
// view and logged with the file and what to do, and never sent.
func TestDamagedEntriesAreQuarantined(t *testing.T) {
	opts := testOptions(t)
	sp, err := openSpool(opts.Dir, OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	spoolOne := func(subject string) string {
		rec := newRecord()
		if _, _, err := sp.create(rec, strings.NewReader(testMessage(subject)), nil); err != nil {
			t.Fatal(err)
		}
		return rec.Envelope.ID
	}
	intact := spoolOne("intact")
	tornRecord := spoolOne("torn record")
	truncated := spoolOne("truncated")
	garbage := spoolOne("garbage")
	unreadable := spoolOne("unreadable")

	// A record cut short by a crash or a bad restore, beside its intact
	// message.
	os.WriteFile(sp.statePath(areaQueue, tornRecord), []byte(`{"version":1,"envelope":{"id":"`+tornRecord+`","recip`), 0o600)
	// A message whose tail is missing: the envelope line is whole.
	fi, _ := os.Stat(sp.msgPath(areaQueue, truncated))
	os.Truncate(sp.msgPath(areaQueue, truncated), fi.Size()-5)
	// A hand edit that broke the envelope line.
	os.WriteFile(sp.msgPath(areaQueue, garbage), []byte("this is not an envelope line\nSubject: x\r\n\r\nbody\r\n"), 0o600)
	// A file that cannot be read at all (a directory in its place fails
	// every read, whoever the test runs as).
	os.Remove(sp.msgPath(areaQueue, unreadable))
	os.Mkdir(sp.msgPath(areaQueue, unreadable), 0o700)

	logs := &lockedBuffer{}
	opts.Log = newTextLogger(logs)
	obs := &recordingObserver{delivered: map[string]int{}, depth: map[string]int{}}
	opts.Observer = obs
	s := newFakeSender()
	q := startQueue(t, opts, s)
	got := s.waitDelivered(t, 2, 5*time.Second)
	if !(got[0] == intact && got[1] == tornRecord || got[0] == tornRecord && got[1] == intact) {
		t.Errorf("delivered %v, want the intact message %s and the one with the torn record %s", got, intact, tornRecord)
	}
	if body := string(s.bodies[tornRecord]); body != testMessage("torn record") {
		t.Errorf("the message beside the torn record was sent as %q", body)
	}
	// The spool loads in the background, in id order: the two deliveries
	// can come before the load has reached the damaged entries, which a
	// slow machine (Wine) shows.
	eventually(t, time.Minute, "four damaged entries quarantined", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.damaged == 4
	})
	q.Close(t.Context())
	for _, id := range []string{truncated, garbage, unreadable} {
		if n := len(s.callsFor(id)); n != 0 {
			t.Errorf("damaged message %s was sent %d times", id, n)
		}
		if _, err := os.Lstat(filepath.Join(opts.Dir, "damaged", id+".msg")); err != nil {
			t.Errorf("damaged message %s is not in damaged/: %v", id, err)
		}
		if sp.exists(areaQueue, id) {
			t.Errorf("damaged message %s is still in queue/", id)
		}
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, "damaged", tornRecord+".json")); err != nil {
		t.Errorf("the torn record is not kept in damaged/ for inspection: %v", err)
	}
	obs.mu.Lock()
	if obs.damaged != 4 {
		t.Errorf("damaged metric = %d, want 4", obs.damaged)
	}
	obs.mu.Unlock()

	log := logs.String()
	for _, id := range []string{truncated, garbage, unreadable} {
		if !strings.Contains(log, "file="+filepath.Join(opts.Dir, "queue", id+".msg")) {
			t.Errorf("no log line names the damaged file of %s", id)
		}
	}
	if !strings.Contains(log, "graphrelay queue damaged") {
		t.Errorf("the log does not tell the admin where to look:\n%s", log)
	}

	admin, err := OpenAdmin(opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := admin.Damaged()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		tornRecord: "parse record",
		truncated:  "cut short",
		garbage:    "parse record",
		unreadable: "is a directory",
	}
	if runtime.GOOS == "windows" {
		// CreateFile refuses a directory where a file is expected.
		want[unreadable] = "denied"
	}
	if len(entries) != len(want) {
		t.Fatalf("admin view lists %d entries, want %d: %+v", len(entries), len(want), entries)
	}
	for _, e := range entries {
		if !strings.Contains(e.Problem, want[e.ID]) {
			t.Errorf("%s: problem %q, want it to mention %q", e.ID, e.Problem, want[e.ID])
		}
		if e.RecordOnly != (e.ID == tornRecord) {
			t.Errorf("%s: record_only = %v", e.ID, e.RecordOnly)
		}
	}
}

// TestLegacyEnvelopeLineWithoutLength: a .msg written before the envelope
// line carried the length (size -1) is still read, its message being the
// rest of the file.
func TestLegacyEnvelopeLineWithoutLength(t *testing.T) {
	sp := newTestSpool(t, nil)
	rec := newRecord()
	msg := testMessage("old")
	if _, _, err := sp.create(rec, strings.NewReader(msg), nil); err != nil {
		t.Fatal(err)
	}
	path := sp.msgPath(areaQueue, rec.Envelope.ID)
	raw, _ := os.ReadFile(path)
	line, rest, _ := strings.Cut(string(raw), "\n")
	i := strings.Index(line, `"size":`)
	j := i + len(`"size":`) + sizeWidth
	legacy := line[:i] + `"size":-1` + line[j:] + "\n" + rest
	os.WriteFile(path, []byte(legacy), 0o600)
	st, err := sp.read(areaQueue, rec.Envelope.ID)
	if err != nil || st.rec.Envelope.Size != int64(len(msg)) {
		t.Fatalf("legacy file: %v, %+v", err, st)
	}
}
