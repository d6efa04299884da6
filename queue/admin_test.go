package queue

import (
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
)

// TestAdminWithDaemon runs every admin request against a running queue:
// the requests travel through ctl/ and the daemon carries them out.
func TestAdminWithDaemon(t *testing.T) {
	s := newFakeSender()
	var failing = map[string]bool{"down@example.com": true}
	s.setScript(func(env *envelope.Envelope, n int) error {
		if env.Mailbox.Address == "denied@example.com" {
			return &graph.Error{Op: "sendMail", Class: graph.Permanent, Status: 403, Code: "ErrorSendAsDenied"}
		}
		if failing[env.Mailbox.Address] {
			return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503}
		}
		return nil
	})
	opts := testOptions(t)
	opts.RetryInitial, opts.RetryMax = time.Hour, time.Hour // retries only when asked
	q := startQueue(t, opts, s)
	a, err := OpenAdmin(opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	a.Timeout = 5 * time.Second
	waiting := deliver(t, q, "down@example.com", "waiting")
	doomed := deliver(t, q, "down@example.com", "to delete")
	dead := deliver(t, q, "denied@example.com", "dead")
	eventually(t, time.Minute, "first attempts made", func() bool {
		recs, _ := a.List()
		fl, _ := a.Failed()
		return len(recs) == 2 && len(fl) == 1 && recs[0].LastError() != "" && recs[1].LastError() != ""
	})

	m, err := a.Show(waiting)
	if err != nil || m.Area != "queue" || !strings.Contains(string(m.Header), "Subject: waiting") || len(m.Record.Attempts) != 1 {
		t.Fatalf("show = %+v, %v", m, err)
	}

	// retry: the daemon schedules it now (it fails again: two attempts).
	resp, err := a.Do(Request{Op: OpRetry, ID: waiting})
	if err != nil || !resp.OK {
		t.Fatalf("retry: %+v %v", resp, err)
	}
	eventually(t, time.Minute, "retried", func() bool { return len(s.callsFor(waiting)) == 2 })

	// retry of a dead letter is refused with advice.
	if resp, _ := a.Do(Request{Op: OpRetry, ID: dead}); resp.OK || !strings.Contains(resp.Message, "requeue") {
		t.Errorf("retry of a dead letter = %+v", resp)
	}

	// delete removes it from the running queue.
	if resp, err := a.Do(Request{Op: OpDelete, ID: doomed}); err != nil || !resp.OK {
		t.Fatalf("delete: %+v %v", resp, err)
	}
	if recs, _ := a.List(); len(recs) != 1 || recs[0].Envelope.ID != waiting {
		t.Errorf("after delete, queue = %v", recs)
	}

	// requeue after the admin fixed the cause.
	s.setScript(nil)
	if resp, err := a.Do(Request{Op: OpRequeue, ID: dead}); err != nil || !resp.OK {
		t.Fatalf("requeue: %+v %v", resp, err)
	}
	s.waitDelivered(t, 1, 5*time.Second)
	if fl, _ := a.Failed(); len(fl) != 0 {
		t.Errorf("failed/ after requeue = %d", len(fl))
	}

	// retry --all delivers what is left.
	if resp, err := a.Do(Request{Op: OpRetry, All: true}); err != nil || !resp.OK || resp.Count != 1 {
		t.Fatalf("retry --all: %+v %v", resp, err)
	}
	s.waitDelivered(t, 1, 5*time.Second)
	eventually(t, time.Minute, "spool empty", func() bool { return len(messageFiles(opts.Dir)) == 0 })

	if resp, err := a.Do(Request{Op: OpDelete, ID: "../../etc"}); err != nil || resp.OK {
		t.Errorf("a path as queue id: %+v %v", resp, err)
	}
}

func TestAdminDeleteDuringAttempt(t *testing.T) {
	s := newFakeSender()
	s.hold = make(chan struct{})
	s.setScript(func(*envelope.Envelope, int) error {
		return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503}
	})
	opts := testOptions(t)
	q := startQueue(t, opts, s)
	a, _ := OpenAdmin(opts.Dir)
	id := deliver(t, q, "a@example.com", "in flight")
	eventually(t, time.Minute, "in flight", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.perID[id] == 1
	})
	resp, err := a.Do(Request{Op: OpDelete, ID: id})
	if err != nil || !resp.OK || !strings.Contains(resp.Message, "when this attempt ends") {
		t.Fatalf("delete = %+v %v", resp, err)
	}
	close(s.hold)
	eventually(t, time.Minute, "deleted after the attempt", func() bool { return len(messageFiles(opts.Dir)) == 0 })
	time.Sleep(3 * opts.RetryMax)
	if n := len(s.callsFor(id)); n != 1 {
		t.Errorf("a deleted message was tried %d times", n)
	}
}

// TestAdminOffline: with no daemon, the command takes the lock and makes
// the change itself; the next daemon sees it.
func TestAdminOffline(t *testing.T) {
	s := newFakeSender()
	s.setScript(func(env *envelope.Envelope, n int) error {
		return &graph.Error{Op: "sendMail", Class: graph.Permanent, Status: 404, Code: "ErrorInvalidUser"}
	})
	opts := testOptions(t)
	q, err := Open(opts, s)
	if err != nil {
		t.Fatal(err)
	}
	q.Start()
	dead := deliver(t, q, "gone@example.com", "dead")
	a, _ := OpenAdmin(opts.Dir)
	eventually(t, time.Minute, "dead letter", func() bool { fl, _ := a.Failed(); return len(fl) == 1 })
	q.Close(t.Context())

	resp, err := a.Do(Request{Op: OpRequeue, ID: dead})
	if err != nil || !resp.OK || !strings.Contains(resp.Message, "next start") {
		t.Fatalf("offline requeue = %+v %v", resp, err)
	}
	st, err := a.spool.read(areaQueue, dead)
	if err != nil || st.rec.RequeuedAt.IsZero() || st.rec.Dead == nil {
		t.Fatalf("requeued record = %+v, %v", st, err)
	}
	s2 := newFakeSender()
	startQueue(t, opts, s2)
	if got := s2.waitDelivered(t, 1, 5*time.Second); got[0] != dead {
		t.Errorf("delivered %v", got)
	}
	// Offline delete of a missing message reports it.
	if resp, _ := a.Do(Request{Op: OpDelete, ID: dead}); resp.OK {
		t.Errorf("delete of a delivered message = %+v", resp)
	}
}

func TestAdminRefusesNonSpool(t *testing.T) {
	if _, err := OpenAdmin(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a graphrelay spool") {
		t.Errorf("OpenAdmin on an empty directory: %v", err)
	}
}
