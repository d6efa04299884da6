package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names in the NATS account. They are fixed so that every relay, and the
// admin commands, find the same stream and buckets.
const (
	streamQueue   = "GRAPHRELAY_QUEUE"
	subjectPrefix = "graphrelay.queue."
	bucketBodies  = "GRAPHRELAY_BODIES"
	bucketRecords = "GRAPHRELAY_RECORDS"
	bucketLeases  = "GRAPHRELAY_LEASES"
	bucketBoxes   = "GRAPHRELAY_MAILBOXES"
	// duplicateWindow is how long JetStream remembers a work item's
	// Nats-Msg-Id, so a publish retried after a lost acknowledgement is
	// stored once.
	duplicateWindow = 2 * time.Minute
)

// store is the connection and the JetStream resources of the cluster.
type store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	bodies jetstream.ObjectStore
	// bodyStream is the object store's stream, for reading chunks.
	bodyStream jetstream.Stream
	records    jetstream.KeyValue
	leases     jetstream.KeyValue
	boxes      jetstream.KeyValue
}

// connect opens the NATS connection with the configured TLS and
// credentials. It keeps reconnecting for ever: a relay that loses the
// cluster answers 451 until it is back, rather than exiting.
func connect(o Options) (*nats.Conn, error) {
	if len(o.URLs) == 0 {
		return nil, errors.New("queue.jetstream.urls is empty")
	}
	name := o.Name
	if name == "" {
		name, _ = os.Hostname()
	}
	opts := []nats.Option{
		nats.Name("graphrelay " + name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(5 * time.Second),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				o.Log.Warn("lost the connection to NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			o.Log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("queue.jetstream.nkey_file: %w", err)
		}
		opts = append(opts, opt)
	}
	if o.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.CAFile))
	}
	if o.CertFile != "" || o.KeyFile != "" {
		opts = append(opts, nats.ClientCert(o.CertFile, o.KeyFile))
	}
	nc, err := nats.Connect(strings.Join(o.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", strings.Join(o.URLs, ","), err)
	}
	return nc, nil
}

// openStore binds to the stream and buckets, creating or updating them
// when create is set (the daemon), and only binding otherwise (the admin
// commands, which must not change the cluster's configuration).
func openStore(ctx context.Context, nc *nats.Conn, o Options, create bool) (*store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s := &store{nc: nc, js: js}
	if !create {
		if s.stream, err = js.Stream(ctx, streamQueue); err != nil {
			return nil, fmt.Errorf("stream %s: %w (has a relay started in cluster mode yet?)", streamQueue, err)
		}
		if s.bodies, err = js.ObjectStore(ctx, bucketBodies); err != nil {
			return nil, fmt.Errorf("object store %s: %w", bucketBodies, err)
		}
		if s.records, err = js.KeyValue(ctx, bucketRecords); err != nil {
			return nil, fmt.Errorf("bucket %s: %w", bucketRecords, err)
		}
		if s.bodyStream, err = js.Stream(ctx, "OBJ_"+bucketBodies); err != nil {
			return nil, fmt.Errorf("object store %s: %w", bucketBodies, err)
		}
		return s, nil
	}
	r := o.Replicas
	// Relays that start together create the same resources at the same
	// moment, and a cluster that has just formed may take a while to
	// place replicated streams: each step is retried for a minute.
	err = retry(ctx, o.Log, "stream "+streamQueue, func(ctx context.Context) (err error) {
		s.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        streamQueue,
			Description: "graphrelay: one work item per message waiting for delivery",
			Subjects:    []string{subjectPrefix + ">"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    r,
			Duplicates:  duplicateWindow,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s with %d replicas: %w", streamQueue, r, err)
	}
	err = retry(ctx, o.Log, "object store "+bucketBodies, func(ctx context.Context) (err error) {
		s.bodies, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: bucketBodies, Description: "graphrelay: message bodies", Storage: jetstream.FileStorage, Replicas: r,
		})
		if err == nil {
			s.bodyStream, err = js.Stream(ctx, "OBJ_"+bucketBodies)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create object store %s: %w", bucketBodies, err)
	}
	kv := func(name, desc string, ttl time.Duration) (b jetstream.KeyValue, err error) {
		err = retry(ctx, o.Log, "bucket "+name, func(ctx context.Context) (err error) {
			b, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket: name, Description: desc, History: 1, TTL: ttl, Storage: jetstream.FileStorage, Replicas: r,
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", name, err)
		}
		return b, nil
	}
	if s.records, err = kv(bucketRecords, "graphrelay: message records (envelope, attempts, dead letters)", 0); err != nil {
		return nil, err
	}
	if s.leases, err = kv(bucketLeases, "graphrelay: per-mailbox request leases", o.Lease); err != nil {
		return nil, err
	}
	if s.boxes, err = kv(bucketBoxes, "graphrelay: per-mailbox Retry-After floor and pacing", 0); err != nil {
		return nil, err
	}
	return s, nil
}

// mailboxToken names a mailbox in subjects, keys and consumer names: a
// hash of the lower-cased address, because an address may hold
// characters that NATS subjects and keys do not allow.
func mailboxToken(address string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(address)))
	return hex.EncodeToString(sum[:8])
}

func consumerName(token string) string { return "mbx-" + token }

// retry runs f with a 10-second deadline until it succeeds, ctx ends, or
// a minute has passed.
func retry(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(tctx)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		log.Warn("cannot set up the cluster's streams yet; retrying", "step", what, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}
