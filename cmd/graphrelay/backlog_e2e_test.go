package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
	"github.com/graphrelay/graphrelay/queue"
)

// holdRecordsFS holds every write of a record in queue/ until released:
// the reading of the backlog writes one for each attempt a crash
// interrupted, so it stops there, in the middle of the load.
type holdRecordsFS struct {
	queue.OSFS
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func (h *holdRecordsFS) Create(path string) (queue.File, error) {
	if strings.HasSuffix(path, ".json.tmp") && filepath.Base(filepath.Dir(path)) == "queue" {
		h.once.Do(func() { close(h.reached) })
		<-h.release
	}
	return h.OSFS.Create(path)
}

// TestQueueSMTPServedWhileBacklogLoads: a restarted daemon greets and
// accepts mail, and delivers it, while the messages a previous run left
// are still being read. The load is held in the middle by the
// filesystem, so the test shows the order (served before loaded), not a
// time.
func TestQueueSMTPServedWhileBacklogLoads(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	spoolThenStop(t, fake, cfg, "old 0", "old 1", "old 2")

	// A kill -9 caught the next attempt of each old message: the next
	// start records them as interrupted while it reads the backlog. The
	// stopped daemon may have made more than one attempt (its retries
	// come 100 ms apart), so the journal names the one after the last
	// its record holds; one it already holds would need no write, and
	// that message would be sent before the held load.
	msgs, _ := filepath.Glob(filepath.Join(cfg.Queue.Dir, "queue", "*.msg"))
	var journal strings.Builder
	for _, m := range msgs {
		id := strings.TrimSuffix(filepath.Base(m), ".msg")
		var rec struct{ Attempts []json.RawMessage }
		if b, err := os.ReadFile(strings.TrimSuffix(m, ".msg") + ".json"); err != nil || json.Unmarshal(b, &rec) != nil {
			t.Fatalf("the record of %s: %v", id, err)
		}
		fmt.Fprintf(&journal, `{"id":%q,"n":%d,"start":%q,"next_try":%q}`+"\n", id, len(rec.Attempts)+1,
			time.Now().Format(time.RFC3339Nano), time.Now().Format(time.RFC3339Nano))
	}
	os.WriteFile(filepath.Join(cfg.Queue.Dir, "journal", "0000000000000099.log"), []byte(journal.String()), 0o600)

	hold := &holdRecordsFS{reached: make(chan struct{}), release: make(chan struct{})}
	released := false
	defer func() {
		if !released {
			close(hold.release)
		}
	}()
	cfg2 := *cfg
	cfg2.SMTP.Listeners = []config.Listener{{Name: "test", Address: "127.0.0.1:0"}}
	r2 := startRelayOnFS(t, &cfg2, fake, hold)
	<-hold.reached
	before := len(fake.Deliveries())
	mustQueue(t, r2.addr, "alerts@company.com", "new while loading")
	ds := fake.WaitDeliveries(before+1, 10*time.Second)
	if got := ds[len(ds)-1].Message.Subject; got != "new while loading" {
		t.Fatalf("last delivery %q, want the new message", got)
	}
	if strings.Contains(r2.logs.String(), "resuming spooled messages") {
		t.Fatal("the backlog finished loading although it was held")
	}
	close(hold.release)
	released = true
	ds = fake.WaitDeliveries(before+1+len(msgs), 10*time.Second)
	if got := subjects(ds[before:]); fmt.Sprint(got) != "[new while loading old 0 old 1 old 2]" {
		t.Errorf("delivered after the restart: %v", got)
	}
	e2etest.WaitFor(t, time.Minute, "the backlog's end", func() bool {
		return strings.Contains(r2.logs.String(), "resuming spooled messages")
	})
}
