package config

import (
	"net/url"
	"strings"
)

// Queue backends for Queue.Backend.
const (
	BackendLocal     = "local"
	BackendJetStream = "jetstream"
)

// JetStream configures the cluster queue backend: the NATS servers, how
// to reach them, and how the relays' shared streams are replicated.
type JetStream struct {
	// URLs are the NATS servers, e.g. nats://nats-0.nats:4222.
	URLs []string `yaml:"urls"`
	// CredsFile is a NATS credentials file (a user JWT and nkey seed);
	// NKeyFile an nkey seed file. Use at most one.
	CredsFile string `yaml:"creds_file"`
	NKeyFile  string `yaml:"nkey_file"`
	// CAFile verifies the servers' TLS certificates; CertFile and KeyFile
	// are a client certificate for servers that ask for one.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Replicas is the replication factor of graphrelay's stream and
	// buckets: 3 (recommended) survives the loss of one NATS server; 1 is
	// allowed, with a warning, for trials.
	Replicas int `yaml:"replicas"`
	// Lease is how long a relay that died holds a message and its share
	// of a mailbox's concurrency before another relay takes over.
	Lease Duration `yaml:"lease"`
}

// validateQueueBackend checks queue.backend and, for jetstream, its keys.
func validateQueueBackend(cfg *Config, errs *Errors) {
	q := &cfg.Queue
	switch q.Backend {
	case BackendLocal:
		return
	case BackendJetStream:
	default:
		errs.add("queue.backend", "must be local or jetstream, not %q", q.Backend)
		return
	}
	j := &q.JetStream
	if len(j.URLs) == 0 {
		errs.add("queue.jetstream.urls", "list the NATS servers (nats://host:4222) for queue.backend jetstream")
	}
	for i, raw := range j.URLs {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss") {
			errs.add("queue.jetstream.urls", "entry %d, %q, is not a NATS URL such as nats://nats-0:4222", i, raw)
		}
	}
	if j.CredsFile != "" && j.NKeyFile != "" {
		errs.add("queue.jetstream.nkey_file", "is set together with creds_file; use one of them")
	}
	checkReadable(errs, "queue.jetstream.creds_file", j.CredsFile)
	checkReadable(errs, "queue.jetstream.nkey_file", j.NKeyFile)
	checkReadable(errs, "queue.jetstream.ca_file", j.CAFile)
	checkReadable(errs, "queue.jetstream.cert_file", j.CertFile)
	checkReadable(errs, "queue.jetstream.key_file", j.KeyFile)
	if (j.CertFile == "") != (j.KeyFile == "") {
		errs.add("queue.jetstream.cert_file", "cert_file and key_file go together")
	}
	if j.Replicas < 1 || j.Replicas > 5 {
		errs.add("queue.jetstream.replicas", "must be between 1 and 5 (3 recommended), not %d", j.Replicas)
	}
	if j.Lease.D() < 1e9 {
		errs.add("queue.jetstream.lease", "must be at least 1s")
	}
	if cfg.Delivery.Mode != ModeQueue {
		errs.add("queue.backend", "jetstream needs delivery.mode queue")
	}
}
