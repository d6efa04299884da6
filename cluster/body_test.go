package cluster

import (
	"sync/atomic"

	"bytes"
	"context"
	"github.com/graphrelay/graphrelay/graph"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/cluster/natstest"
	"github.com/graphrelay/graphrelay/queue"
)

// TestBodyInlineOrObject: a body of at most inlineMax bytes travels in
// the record and writes nothing to the object store; a larger one goes
// to the object store. Either way "queue show" finds its header, "queue
// delete" removes it, and the Sender gets it byte for byte.
func TestBodyInlineOrObject(t *testing.T) {
	nc := natstest.Start(t, 1)
	s := newSender(time.Millisecond)
	var mu sync.Mutex
	got := map[string][]byte{}
	sender := &bodySender{recordingSender: s, got: func(b []byte) {
		mu.Lock()
		got[subjectOf(b)] = b
		mu.Unlock()
	}}
	// Every first attempt fails and waits an hour, so what was stored can
	// be seen, and survives the attempt's updates of the record.
	var failing atomic.Bool
	failing.Store(true)
	s.fail = func(string, int) error {
		if failing.Load() {
			return &graph.Error{Op: "sendMail", Class: graph.Transient, Status: 503, Code: "ServiceUnavailable"}
		}
		return nil
	}
	c := relays(t, nc, 1, sender, func(o *Options) { o.Replicas = 1; o.RetryInitial, o.RetryMax = time.Hour, time.Hour })[0]
	admin, err := OpenAdmin(Options{URLs: nc.URLs(), Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	cases := []struct {
		name   string
		size   int
		inline bool
	}{
		{"small", 300, true},
		{"at-limit", inlineMax, true},
		{"over-limit", inlineMax + 1, false},
		{"large", 3 << 20, false},
	}
	bodies := map[string][]byte{}
	ids := map[string]string{}
	for _, tc := range cases {
		body := message(tc.name, tc.size-len(message(tc.name, 0)))
		if len(body) != tc.size {
			t.Fatalf("%s: test body has %d bytes, want %d", tc.name, len(body), tc.size)
		}
		env := testEnvelope("alerts@company.com")
		if err := c.Deliver(context.Background(), env, bytes.NewReader(body)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		bodies[tc.name], ids[tc.name] = body, env.ID
		var rec *stored
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			rec, err = c.st.getRecord(context.Background(), env.ID)
			if err == nil && len(rec.Attempts) == 1 && rec.Attempts[0].Outcome == queue.OutcomeTransient {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the first attempt never failed: %+v %v", tc.name, rec, err)
			}
		}
		_, objErr := c.st.bodyInfo(context.Background(), env.ID)
		if rec.Inline != tc.inline || (objErr == nil) == tc.inline || rec.Envelope.Size != int64(tc.size) {
			t.Errorf("%s (%d bytes): inline %v, object store error %v, size %d; want inline %v and the object only when not inline",
				tc.name, tc.size, rec.Inline, objErr, rec.Envelope.Size, tc.inline)
		}
		if tc.inline && !bytes.Equal(rec.Body, body) {
			t.Errorf("%s: the record carries %d bytes, not the body", tc.name, len(rec.Body))
		}
		m, err := admin.Show(env.ID)
		if err != nil {
			t.Fatalf("%s: show: %v", tc.name, err)
		}
		if !bytes.Contains(m.Header, []byte("Subject: "+tc.name+"\r\n")) {
			t.Errorf("%s: show gave the header %q", tc.name, m.Header)
		}
	}
	// Delete one of each kind: nothing of theirs may stay behind.
	for _, name := range []string{"small", "over-limit"} {
		if resp, err := admin.Do(queue.Request{Op: queue.OpDelete, ID: ids[name]}); err != nil || !resp.OK {
			t.Fatalf("delete %s: %+v %v", name, resp, err)
		}
	}
	failing.Store(false)
	for _, name := range []string{"at-limit", "large"} {
		if resp, err := admin.Do(queue.Request{Op: queue.OpRetry, ID: ids[name]}); err != nil || !resp.OK {
			t.Fatalf("retry %s: %+v %v", name, resp, err)
		}
	}
	waitDelivered(t, s, []string{"at-limit", "large"}, time.Minute)
	waitEmpty(t, c)
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"at-limit", "large"} {
		if !bytes.Equal(got[name], bodies[name]) {
			t.Errorf("%s: the Sender got %d bytes, not the %d accepted", name, len(got[name]), len(bodies[name]))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.delivered["small"] + s.delivered["over-limit"]; n != 0 {
		t.Errorf("%d deleted messages were sent", n)
	}
}
