package queue

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
)

// TestRetryAfterFloorSurvivesRestart: a 429 with Retry-After: 20 holds
// the whole mailbox, and the restarted queue still holds it: the other
// mailbox's messages are delivered after the restart while no request
// for the throttled one is made, and the floor loaded is the one set.
func TestRetryAfterFloorSurvivesRestart(t *testing.T) {
	const ra = 20 * time.Second
	s := newFakeSender()
	throttled := make(chan time.Time, 1)
	s.setScript(func(env *envelope.Envelope, n int) error {
		if env.Mailbox.Address == "busy@example.com" && n == 1 {
			throttled <- time.Now()
			return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 429, Code: "TooManyRequests", RetryAfter: ra}
		}
		return nil
	})
	opts := testOptions(t)
	opts.RetryMax = time.Hour // Retry-After is capped at retry_max
	q, err := Open(opts, s)
	if err != nil {
		t.Fatal(err)
	}
	q.Start()
	first := deliver(t, q, "busy@example.com", "b0")
	sent := <-throttled
	eventually(t, time.Minute, "the 429 is recorded", func() bool {
		st, err := q.spool.read(areaQueue, first)
		return err == nil && len(st.rec.Attempts) == 1 && st.rec.Attempts[0].Outcome == OutcomeTransient
	})
	for range 3 {
		deliver(t, q, "busy@example.com", "waiting")
	}
	q.mu.Lock()
	floor := q.boxes["busy@example.com"].gate.floor()
	q.mu.Unlock()
	if floor.Before(sent.Add(ra)) {
		t.Fatalf("floor %s is before the 429 plus Retry-After", floor)
	}
	q.Close(t.Context())

	s2 := newFakeSender()
	q2 := startQueue(t, opts, s2)
	q2.mu.Lock()
	loaded := q2.boxes["busy@example.com"].gate.floor()
	q2.mu.Unlock()
	if !loaded.Equal(floor) {
		t.Errorf("the restarted queue's floor is %s, want %s", loaded, floor)
	}
	for range 3 {
		deliver(t, q2, "free@example.com", "free")
	}
	s2.waitDelivered(t, 3, 10*time.Second)
	for _, c := range s2.allCalls() {
		if c.mailbox == "busy@example.com" && c.start.Before(floor) {
			t.Errorf("the restarted queue sent %s for the throttled mailbox %s before its floor", c.id, floor.Sub(c.start))
		}
	}
}

// TestLoadedFloorIsCapped: a floor far in the future (a bogus header, a
// clock that jumped) holds the mailbox for at most maxFloor; one that has
// passed is ignored.
func TestLoadedFloorIsCapped(t *testing.T) {
	opts := testOptions(t)
	opts.RetryMax = time.Hour // Retry-After is capped at retry_max
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := `{"version":1,"floors":[` +
		`{"mailbox":"far@example.com","not_before":"` + now.Add(30*24*time.Hour).Format(time.RFC3339Nano) + `"},` +
		`{"mailbox":"past@example.com","not_before":"` + now.Add(-time.Minute).Format(time.RFC3339Nano) + `"}]}`
	os.WriteFile(filepath.Join(opts.Dir, fileFloors), []byte(body), 0o600)
	logs := &lockedBuffer{}
	opts.Log = newTextLogger(logs)
	q := startQueue(t, opts, newFakeSender())
	q.mu.Lock()
	far := q.boxes["far@example.com"].gate.floor()
	_, past := q.boxes["past@example.com"]
	q.mu.Unlock()
	if far.After(time.Now().Add(maxFloor)) || far.Before(now.Add(maxFloor-time.Minute)) {
		t.Errorf("far floor loaded as %s from now, want capped at %s", far.Sub(now), maxFloor)
	}
	if past {
		t.Error("a floor that has passed created a mailbox")
	}
	if !strings.Contains(logs.String(), "mailbox=far@example.com") {
		t.Errorf("the loaded floor is not logged:\n%s", logs)
	}
}
