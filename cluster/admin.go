package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphrelay/graphrelay/queue"
)

// Admin carries out "graphrelay queue ..." against the cluster, from any
// host that can reach NATS: every change is a compare-and-set on the
// message's record, so it cannot be lost to a relay's attempt running at
// the same time (the relay's update fails and the admin's stands).
type Admin struct {
	opts Options
	nc   *nats.Conn
	st   *store
	ctx  context.Context
}

// OpenAdmin connects to the cluster; it binds to the existing stream and
// buckets and changes no configuration.
func OpenAdmin(opts Options) (*Admin, error) {
	opts = opts.withDefaults()
	nc, err := connect(opts)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	st, err := openStore(ctx, nc, opts, false)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &Admin{opts: opts, nc: nc, st: st, ctx: ctx}, nil
}

// Close closes the connection.
func (a *Admin) Close() { a.nc.Close() }

// records reads every record; dead selects dead letters or waiting mail.
func (a *Admin) records(dead bool) ([]*queue.Record, []error) {
	ctx, cancel := context.WithTimeout(a.ctx, time.Minute)
	defer cancel()
	lister, err := a.st.records.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var recs []*queue.Record
	var problems []error
	for key := range lister.Keys() {
		rec, err := a.get(ctx, key)
		if err != nil {
			if !isNotFound(err) {
				problems = append(problems, fmt.Errorf("%s: %w", key, err))
			}
			continue
		}
		if (rec.Dead != nil) == dead {
			r := rec.Record
			recs = append(recs, &r)
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Envelope.ID < recs[j].Envelope.ID })
	return recs, problems
}

// List returns the messages waiting for delivery, in every relay.
func (a *Admin) List() ([]*queue.Record, []error) { return a.records(false) }

// Failed returns the dead letters.
func (a *Admin) Failed() ([]*queue.Record, []error) { return a.records(true) }

func (a *Admin) get(ctx context.Context, id string) (*stored, error) {
	return a.st.getRecord(ctx, id)
}

// Damaged returns nothing: the cluster has no damaged/ area; a record
// that cannot be read is reported by List and Failed with its key.
func (a *Admin) Damaged() ([]queue.DamagedEntry, error) { return nil, nil }

// Show returns one message with its header block.
func (a *Admin) Show(id string) (*queue.Message, error) {
	if !queue.ValidID(id) {
		return nil, fmt.Errorf("%q is not a queue id", id)
	}
	rec, err := a.get(a.ctx, id)
	if isNotFound(err) {
		return nil, fmt.Errorf("no message %s in the cluster", id)
	}
	if err != nil {
		return nil, err
	}
	m := &queue.Message{Area: "queue", Path: "nats object " + bucketBodies + "/" + id, Record: &rec.Record}
	if rec.Dead != nil {
		m.Area = "failed"
	}
	if rec.Inline {
		m.Path = "nats record " + bucketRecords + "/" + id
		m.Header = headerBlock(bytes.NewReader(rec.Body))
	} else if obj, err := a.st.bodies.Get(a.ctx, id); err == nil {
		m.Header = headerBlock(obj)
		obj.Close()
	}
	return m, nil
}

// headerBlock reads a message's header block, up to 1 MiB.
func headerBlock(r io.Reader) []byte {
	br := bufio.NewReader(io.LimitReader(r, 1<<20))
	var b bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		b.Write(line)
		if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
			return b.Bytes()
		}
	}
}

// Do carries out retry, delete or requeue.
func (a *Admin) Do(req queue.Request) (queue.Response, error) {
	if req.Op == queue.OpRetry && req.All {
		recs, _ := a.List()
		n := 0
		for _, r := range recs {
			if _, err := a.change(r.Envelope.ID, req.Op); err == nil {
				n++
			}
		}
		return queue.Response{OK: true, Message: fmt.Sprintf("%d message(s) scheduled for delivery now", n), Count: n}, nil
	}
	if !queue.ValidID(req.ID) {
		return queue.Response{Message: fmt.Sprintf("%q is not a queue id", req.ID)}, nil
	}
	msg, err := a.change(req.ID, req.Op)
	if err != nil {
		return queue.Response{Message: err.Error()}, nil
	}
	return queue.Response{OK: true, Message: msg, Count: 1}, nil
}

// change applies one admin operation to a record, retrying when a relay
// updated it at the same moment.
func (a *Admin) change(id, op string) (string, error) {
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	for try := 0; try < 10; try++ {
		rec, err := a.get(ctx, id)
		if isNotFound(err) {
			return "", fmt.Errorf("no message %s in the cluster", id)
		}
		if err != nil {
			return "", err
		}
		var done string
		switch op {
		case queue.OpDelete:
			err = a.st.records.Purge(ctx, id, jetstream.LastRevision(rec.rev))
			if err == nil {
				a.dropWorkItem(ctx, rec.Seq)
				if derr := a.st.dropBody(ctx, rec); derr != nil {
					return "", fmt.Errorf("deleted the record, but not the body: %w", derr)
				}
				return "deleted " + id, nil
			}
		case queue.OpRetry, queue.OpRequeue:
			if op == queue.OpRetry && rec.Dead != nil {
				return "", fmt.Errorf("%s is a dead letter; use requeue", id)
			}
			if op == queue.OpRequeue && rec.Dead == nil {
				return "", fmt.Errorf("%s is not a dead letter; use retry", id)
			}
			if op == queue.OpRequeue {
				rec.Dead, rec.RequeuedAt = nil, time.Now()
				done = "requeued " + id
			} else {
				done = id + " scheduled for delivery now"
			}
			rec.Gen++
			rec.NextTry = time.Now()
			var rev uint64
			rev, err = a.st.records.Update(ctx, id, encode(rec), rec.rev)
			if err == nil {
				rec.rev = rev
				a.dropWorkItem(ctx, rec.Seq)
				w := workItem{ID: id, Gen: rec.Gen}
				if _, err := a.st.js.Publish(ctx, subjectPrefix+mailboxToken(rec.Envelope.Mailbox.Address), encode(w),
					jetstream.WithMsgID(id+"."+strconv.Itoa(rec.Gen)), jetstream.WithExpectStream(streamQueue)); err != nil {
					return "", fmt.Errorf("the record is updated, but the work item was not stored (run the command again): %w", err)
				}
				return done, nil
			}
		default:
			return "", fmt.Errorf("unknown operation %q", op)
		}
		if !isConflict(err) {
			return "", err
		}
	}
	return "", errors.New("the message kept changing; try again")
}

// Import stores a message from a host's local spool in the cluster with
// its id, envelope and history: a waiting message gets a work item and is
// delivered by the relays, a dead letter stays one. A message already in
// the cluster (from an earlier, interrupted run) is left as it is.
func (a *Admin) Import(rec *queue.Record, body io.Reader) error {
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Minute)
	defer cancel()
	id := rec.Envelope.ID
	if _, err := a.st.getRecord(ctx, id); err == nil {
		return nil
	} else if !isNotFound(err) {
		return err
	}
	inline, size, err := a.st.putBody(ctx, id, body)
	if err != nil {
		return fmt.Errorf("store the body: %w", err)
	}
	if size != rec.Envelope.Size {
		if inline == nil {
			a.st.removeBody(context.Background(), id)
		}
		return fmt.Errorf("stored %d bytes of %d", size, rec.Envelope.Size)
	}
	st := stored{Record: *rec, Gen: 1}
	st.setBody(inline)
	if st.Attempts == nil {
		st.Attempts = []queue.Attempt{}
	}
	if _, err := a.st.records.Create(ctx, id, encode(&st)); err != nil {
		return fmt.Errorf("store the record: %w", err)
	}
	if st.Dead != nil {
		return nil
	}
	// The relays serve the mailboxes that have a consumer; this one may
	// be known only to the host being migrated.
	if _, err := a.st.stream.CreateOrUpdateConsumer(ctx, consumerConfig(rec.Envelope.Mailbox.Address, a.opts.Lease)); err != nil {
		return fmt.Errorf("create the consumer for mailbox %s: %w", rec.Envelope.Mailbox.Address, err)
	}
	w := workItem{ID: id, Gen: st.Gen}
	if _, err := a.st.js.Publish(ctx, subjectPrefix+mailboxToken(rec.Envelope.Mailbox.Address), encode(w),
		jetstream.WithMsgID(id+".1"), jetstream.WithExpectStream(streamQueue)); err != nil {
		return fmt.Errorf("store the work item: %w", err)
	}
	return nil
}

// dropWorkItem removes a superseded work item from the stream. It is only
// tidying: a relay that fetches it finds the record changed and drops it.
func (a *Admin) dropWorkItem(ctx context.Context, seq uint64) {
	if seq != 0 {
		a.st.stream.DeleteMsg(ctx, seq)
	}
}
