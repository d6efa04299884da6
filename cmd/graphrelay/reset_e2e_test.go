package main

import (
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// TestQueueConnectionResetIsAmbiguous: Graph accepts the message and the
// connection is then reset before the answer arrives. graphrelay cannot
// know that Graph has it, so it retries, and the duplicate must be
// traceable: a "possible duplicate" line with the first request's
// client-request-id, and a hint that Graph was reached.
func TestQueueConnectionResetIsAmbiguous(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	r := startRelay(t, cfg, fake)
	fake.FailGraph(graphtest.Fault{Reset: true, AfterAccept: true})
	mustQueue(t, r.addr, "alerts@company.com", "reset after accept")
	ds := fake.WaitDeliveries(2, 10*time.Second)
	if len(ds) != 2 || ds[0].ClientRequestID == ds[1].ClientRequestID {
		t.Fatalf("deliveries = %d; a reset after the request was sent must be retried with a new request", len(ds))
	}
	e2etest.WaitFor(t, time.Minute, "log", func() bool { return strings.Contains(r.logs.String(), "msg=delivered") })
	var dup, deferred string
	for _, line := range strings.Split(r.logs.String(), "\n") {
		switch {
		case strings.Contains(line, "possible duplicate"):
			dup = line
		case strings.Contains(line, "msg=deferred"):
			deferred = line
		}
	}
	if !strings.Contains(dup, "client_request_id="+ds[0].ClientRequestID) {
		t.Errorf("no possible-duplicate line with client-request-id %s; got %q", ds[0].ClientRequestID, dup)
	}
	if !strings.Contains(deferred, "ambiguous=true") || !strings.Contains(deferred, "Graph may have accepted it") {
		t.Errorf("the deferred line must be ambiguous and say Graph may have accepted the message: %q", deferred)
	}
}
