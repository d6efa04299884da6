package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphrelay/graphrelay/queue"
)

// Cluster is the Deliverer of one relay in cluster mode.
type Cluster struct {
	opts   Options
	st     *store
	sender queue.Sender
	log    *slog.Logger
	gate   *gate
	// fate settles every attempt's outcome, with the local queue's code.
	fate *queue.Fate

	// ctx is passed to every Send; it is cancelled only when Close runs
	// out of time, so requests in flight may finish during a shutdown.
	ctx      context.Context
	cancel   context.CancelFunc
	fetchCtx context.Context // cancelled when Close starts: no new message is taken
	stopFet  context.CancelFunc
	stopping atomic.Bool

	workers chan struct{}
	mu      sync.Mutex
	boxes   map[string]*box // by token
	wg      sync.WaitGroup  // fetchers and loops
	closeMu sync.Once
}

// box is one mailbox as this relay serves it.
type box struct {
	token    string
	address  string
	limit    int
	interval time.Duration // pacing gap from messages_per_minute
	cons     jetstream.Consumer
}

// workItem is the content of a stream message: which record to deliver,
// and which generation of it, so that a work item left over from before a
// "retry" or "requeue" is recognised and dropped.
type workItem struct {
	ID  string `json:"id"`
	Gen int    `json:"gen"`
}

// stored is a record as kept in GRAPHRELAY_RECORDS: the local queue's
// Record and the generation of its current work item.
type stored struct {
	queue.Record
	Gen int `json:"gen"`
	// Seq is the stream sequence of the work item a relay last attempted,
	// so that an admin's retry, requeue or delete removes a deferred item
	// instead of leaving it in the stream until its delay ends.
	Seq uint64 `json:"seq,omitempty"`
	// Inline says the body is Body, kept in the record because it is at
	// most inlineMax bytes; otherwise it is in the object store under the
	// message's id (body.go).
	Inline bool   `json:"inline,omitempty"`
	Body   []byte `json:"body,omitempty"`
	// rev is the record's revision in the bucket when it was read, for
	// compare-and-set: an admin's change made during an attempt wins.
	rev uint64
}

// Open connects to NATS and creates (or updates) the stream and buckets
// with the configured replication. Nothing is delivered until Start.
func Open(ctx context.Context, opts Options, sender queue.Sender) (*Cluster, error) {
	opts = opts.withDefaults()
	if opts.Replicas < 3 {
		opts.Log.Warn("queue.jetstream.replicas is below 3: a single NATS server's loss can lose accepted mail or stop the relays accepting",
			"replicas", opts.Replicas, "hint", "use 3 replicas on a 3-node NATS cluster in production")
	}
	if opts.StageDir != "" {
		if err := os.MkdirAll(opts.StageDir, 0o700); err != nil {
			return nil, fmt.Errorf("staging directory (queue.dir): %w", err)
		}
	}
	nc, err := connect(opts)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, nc, opts, true)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := &Cluster{opts: opts, st: st, sender: sender, log: opts.Log, fate: opts.fate(),
		workers: make(chan struct{}, opts.Workers), boxes: map[string]*box{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.fetchCtx, c.stopFet = context.WithCancel(c.ctx)
	c.gate = newGate(st, opts)
	return c, nil
}

// Start begins delivering: the configured mailboxes at once, and any other
// mailbox as soon as a relay has accepted mail for it.
func (c *Cluster) Start() error {
	if err := c.gate.watch(c.fetchCtx); err != nil {
		return err
	}
	for _, m := range c.opts.Mailboxes {
		if _, err := c.serve(c.fetchCtx, m.Address); err != nil {
			return err
		}
	}
	c.wg.Add(2)
	go c.discoverLoop()
	go c.statsLoop()
	return nil
}

// limits returns a mailbox's configured limits.
func (c *Cluster) limits(address string) (int, time.Duration) {
	for _, m := range c.opts.Mailboxes {
		if strings.EqualFold(m.Address, address) {
			limit := m.MaxConcurrency
			if limit <= 0 {
				limit = c.opts.DefaultConcurrency
			}
			var interval time.Duration
			if m.MessagesPerMinute > 0 {
				interval = time.Minute / time.Duration(m.MessagesPerMinute)
			}
			return limit, interval
		}
	}
	return c.opts.DefaultConcurrency, 0
}

// serve makes sure the mailbox's consumer exists and that this relay
// fetches from it.
func (c *Cluster) serve(ctx context.Context, address string) (*box, error) {
	token := mailboxToken(address)
	c.mu.Lock()
	b := c.boxes[token]
	c.mu.Unlock()
	if b != nil {
		return b, nil
	}
	limit, interval := c.limits(address)
	cons, err := c.st.stream.CreateOrUpdateConsumer(ctx, consumerConfig(address, c.opts.Lease))
	if err != nil {
		return nil, fmt.Errorf("create the consumer for mailbox %s: %w", address, err)
	}
	b = &box{token: token, address: address, limit: limit, interval: interval, cons: cons}
	c.mu.Lock()
	if old := c.boxes[token]; old != nil {
		c.mu.Unlock()
		return old, nil
	}
	c.boxes[token] = b
	// Close sets stopping under mu, so no fetcher is added once it waits.
	if c.stopping.Load() {
		c.mu.Unlock()
		return b, nil
	}
	c.wg.Add(limit)
	c.mu.Unlock()
	for range limit {
		go c.fetchLoop(b)
	}
	return b, nil
}

// consumerConfig is a mailbox's durable consumer, shared by all relays.
func consumerConfig(address string, lease time.Duration) jetstream.ConsumerConfig {
	token := mailboxToken(address)
	return jetstream.ConsumerConfig{
		Durable:       consumerName(token),
		Description:   address,
		FilterSubject: subjectPrefix + token,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       lease,
		MaxDeliver:    -1,
		// Deferred messages (a delayed negative acknowledgement) count as
		// pending, so this is not the concurrency limit; the leases are.
		MaxAckPending: -1,
		Metadata:      map[string]string{"mailbox": address},
	}
}

// discoverLoop picks up mailboxes that other relays created consumers for.
func (c *Cluster) discoverLoop() {
	defer c.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-c.fetchCtx.Done():
			return
		case <-t.C:
		}
		lister := c.st.stream.ListConsumers(c.fetchCtx)
		for info := range lister.Info() {
			if addr := info.Config.Metadata["mailbox"]; addr != "" {
				if _, err := c.serve(c.fetchCtx, addr); err != nil && c.fetchCtx.Err() == nil {
					c.log.Warn("cannot serve a mailbox another relay accepted mail for", "mailbox", addr, "err", err)
				}
			}
		}
	}
}

// Ready reports whether this relay can store a message now: connected,
// and the stream has a leader with a quorum of current replicas.
func (c *Cluster) Ready(ctx context.Context) error {
	if !c.st.nc.IsConnected() {
		return fmt.Errorf("not connected to NATS (%s)", c.st.nc.Status())
	}
	info, err := c.st.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", streamQueue, err)
	}
	return replicationOK(info, c.opts.Replicas)
}

// replicationOK checks that the stream has a leader and a quorum of its
// replicas current.
func replicationOK(info *jetstream.StreamInfo, want int) error {
	if info.Config.Replicas != want {
		return fmt.Errorf("stream %s has %d replicas, configured %d", streamQueue, info.Config.Replicas, want)
	}
	if want == 1 {
		return nil
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return fmt.Errorf("stream %s has no leader: fewer than a quorum of NATS servers are up", streamQueue)
	}
	current := 1
	for _, p := range info.Cluster.Replicas {
		if p.Current && !p.Offline {
			current++
		}
	}
	if current < want/2+1 {
		return fmt.Errorf("stream %s has %d of %d replicas current, fewer than a quorum", streamQueue, current, want)
	}
	return nil
}

// StopDispatch stops taking messages from the stream, at the start of a
// shutdown; accepting goes on until Close, and requests in flight finish.
func (c *Cluster) StopDispatch() { c.stopFet() }

// Close stops taking messages, lets requests in flight finish until ctx
// ends, cancels the rest (they return to the stream after the lease) and
// closes the connection.
func (c *Cluster) Close(ctx context.Context) error {
	c.closeMu.Do(func() {
		c.mu.Lock()
		c.stopping.Store(true)
		c.mu.Unlock()
		c.stopFet()
		done := make(chan struct{})
		go func() { c.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			c.log.Warn("Graph requests still in flight at the shutdown deadline; aborting them, another relay retries them after the lease")
			c.cancel()
			<-done
		}
		c.gate.close()
		c.cancel()
		c.st.nc.Drain()
	})
	return nil
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are encoded
	}
	return b
}

func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrObjectNotFound)
}
