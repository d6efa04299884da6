package queue

import (
	"strings"
	"testing"
	"time"
)

// TestAcceptsWhileBacklogLoads: with the reading of a previous run's
// messages held in the middle, a new message is spooled and delivered;
// the backlog then finishes and every old message is delivered too. What
// is asserted is the order (served before loaded), not a time.
func TestAcceptsWhileBacklogLoads(t *testing.T) {
	opts := testOptions(t)
	sp, err := openSpool(opts.Dir, OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	const old = 40
	for range old {
		rec := newRecord()
		if _, _, err := sp.create(rec, strings.NewReader(testMessage("old")), nil); err != nil {
			t.Fatal(err)
		}
	}
	s := newFakeSender()
	q, err := Open(opts, s)
	if err != nil {
		t.Fatal(err)
	}
	reached, release := make(chan struct{}), make(chan struct{})
	q.loadHook = func(i int) {
		if i == old/2 {
			close(reached)
			<-release
		}
	}
	q.Start()
	t.Cleanup(func() { q.Close(t.Context()) })
	<-reached
	fresh := deliver(t, q, "new@example.com", "new while loading")
	oldSeen := 0
	for got := ""; got != fresh; {
		select {
		case got = <-s.delivered:
			if got != fresh {
				oldSeen++
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the new message was not delivered while the backlog was held")
		}
	}
	select {
	case <-q.Loaded():
		t.Fatal("the backlog finished although its reading was held")
	default:
	}
	close(release)
	select {
	case <-q.Loaded():
	case <-time.After(10 * time.Second):
		t.Fatal("the backlog did not finish")
	}
	s.waitDelivered(t, old-oldSeen, 10*time.Second)
}

// TestCloseDuringBacklogKeepsTheRest: a queue closed while it reads the
// backlog stops reading, and the next start delivers what was left,
// journal included.
func TestCloseDuringBacklogKeepsTheRest(t *testing.T) {
	opts := testOptions(t)
	sp, err := openSpool(opts.Dir, OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	const old = 20
	for range old {
		if _, _, err := sp.create(newRecord(), strings.NewReader(testMessage("old")), nil); err != nil {
			t.Fatal(err)
		}
	}
	s := newFakeSender()
	q, err := Open(opts, s)
	if err != nil {
		t.Fatal(err)
	}
	reached := make(chan struct{})
	q.loadHook = func(i int) {
		if i == 5 {
			close(reached)
			// Close is under way once quit is closed; the loader must
			// then stop reading.
			<-q.quit
		}
	}
	q.Start()
	<-reached
	q.Close(t.Context())
	s2 := newFakeSender()
	startQueue(t, opts, s2)
	got := map[string]bool{}
	for _, id := range s.waitDeliveredUpTo(5) {
		got[id] = true
	}
	for _, id := range s2.waitDelivered(t, old-len(got), 10*time.Second) {
		got[id] = true
	}
	if len(got) != old {
		t.Errorf("%d distinct messages delivered over both runs, want %d", len(got), old)
	}
}
