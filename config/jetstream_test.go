package config

import (
	"strings"
	"testing"
)

// TestQueueBackend: the jetstream backend's keys load from YAML and the
// environment, and each mistake is reported by its key.
func TestQueueBackend(t *testing.T) {
	if d := Default(); d.Queue.Backend != BackendLocal || d.Queue.JetStream.Replicas != 3 {
		t.Fatalf("default backend %q, replicas %d; want local and 3", d.Queue.Backend, d.Queue.JetStream.Replicas)
	}
	ok := []string{"GRAPHRELAY_QUEUE_BACKEND=jetstream", "GRAPHRELAY_QUEUE_JETSTREAM_URLS=nats://n1:4222,nats://n2:4222"}
	cfg, err := Load("testdata/production.yaml", ok)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Queue.JetStream.URLs) != 2 || cfg.Queue.JetStream.Lease.D().Seconds() != 30 {
		t.Errorf("jetstream = %+v", cfg.Queue.JetStream)
	}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"GRAPHRELAY_QUEUE_BACKEND=raft"}, "queue.backend"},
		{[]string{"GRAPHRELAY_QUEUE_BACKEND=jetstream"}, "queue.jetstream.urls"},
		{append(ok[:2:2], "GRAPHRELAY_QUEUE_JETSTREAM_URLS=http://n1"), "queue.jetstream.urls"},
		{append(ok[:2:2], "GRAPHRELAY_QUEUE_JETSTREAM_REPLICAS=0"), "queue.jetstream.replicas"},
		{append(ok[:2:2], "GRAPHRELAY_QUEUE_JETSTREAM_LEASE=10ms"), "queue.jetstream.lease"},
		{append(ok[:2:2], "GRAPHRELAY_QUEUE_JETSTREAM_CREDS_FILE=/nonexistent/x.creds"), "queue.jetstream.creds_file"},
	} {
		_, err := Load("testdata/production.yaml", tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v; want one naming %s", tc.env, err, tc.want)
		}
	}
}
