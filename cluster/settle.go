package cluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/queue"
)

// streamHolder is the cluster's queue.Holder for a work item whose
// attempt queue.Fate settles. The record in the bucket is the message's
// state and is written while Fate decides; the work item is acknowledged
// (gone) or handed back with a delay (to wait) in Done, after the
// outcome's log line.
type streamHolder struct {
	c    *Cluster
	m    jetstream.Msg
	rec  *stored
	body io.ReaderAt // nil when the body is missing from the cluster
	done func()
}

func (h *streamHolder) Record() *queue.Record { return &h.rec.Record }

// Deleted is false: an admin's delete during the attempt shows as a
// changed record when Retry or Bury write it (putRecord), and stands.
func (h *streamHolder) Deleted() bool { return false }

// Remove deletes the record first, so that a crash before the work
// item's acknowledgement sends nothing again; the body goes last. For the
// same reason the acknowledgement is not confirmed (a double ack would
// wait for the stream's quorum once more): a work item whose ack is lost
// comes back after the lease, finds no record, and is dropped (handle).
// Not waiting cut the NATS servers' CPU per message by about an eighth.
func (h *streamHolder) Remove() error {
	c, rec := h.c, h.rec
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.st.records.Purge(ctx, rec.Envelope.ID)
	if aerr := h.m.Ack(); aerr != nil {
		c.log.Warn("cannot acknowledge the work item; it returns after the lease and is dropped then", append(c.msgAttrs(rec), "err", aerr)...)
	}
	if berr := c.st.dropBody(ctx, rec); berr != nil {
		c.log.Warn("cannot remove the body from the object store", append(c.msgAttrs(rec), "err", berr)...)
	}
	return err
}

// Retry writes the record and hands the work item back to the stream
// until the record's NextTry. A record an admin changed meanwhile stands,
// and the work item is dropped.
func (h *streamHolder) Retry() error {
	err := h.c.putRecord(context.Background(), h.rec)
	if errors.Is(err, errChanged) {
		h.done = func() { h.m.Ack() }
		return err
	}
	// A record that could not be written is only behind by this
	// attempt; the work item waits all the same.
	delay := max(time.Until(h.rec.NextTry), time.Millisecond)
	h.done = func() { h.m.NakWithDelay(delay) }
	return nil
}

// Bury writes the record, now a dead letter that stays with its body for
// "queue requeue" or "queue delete", and then drops the work item. A dead
// letter that cannot be written is retried instead of lost.
func (h *streamHolder) Bury() error {
	c := h.c
	err := c.putRecord(context.Background(), h.rec)
	switch {
	case errors.Is(err, errChanged):
		h.done = func() { h.m.Ack() }
	case err != nil:
		c.log.Error("cannot record the dead letter; it is retried instead", append(c.msgAttrs(h.rec), "err", err)...)
		h.done = func() { h.m.NakWithDelay(c.opts.RetryInitial) }
	default:
		h.done = func() { h.m.Ack() }
	}
	return err
}

func (h *streamHolder) Notify(kind string, res queue.Result, now time.Time) (string, error) {
	if h.body == nil {
		return "", errors.New("the message body is missing from the cluster, so no notice can quote it")
	}
	return h.c.notify(kind, h.rec, res, now, h.body)
}

func (h *streamHolder) Done() {
	if h.done != nil {
		h.done()
	}
}

// notify queues a notice ("failed" or "delayed") as an ordinary cluster
// message, with the local queue's text.
func (c *Cluster) notify(kind string, rec *stored, res queue.Result, now time.Time, body io.ReaderAt) (string, error) {
	id := envelope.NewID()
	to := c.fate.NoticeRecipients(&rec.Record)
	raw, err := queue.BuildNotice(kind, id, c.opts.NoticeMailbox.Address, to, now,
		&rec.Record, res, rec.Expiry(c.opts.MaxAge), "the cluster's dead letters (graphrelay queue failed)", body, rec.Envelope.Size)
	if err != nil {
		return "", err
	}
	env := &envelope.Envelope{ID: id, Listener: "graphrelay", Helo: "graphrelay", Recipients: to,
		Mailbox: c.opts.NoticeMailbox, Format: envelope.FormatJSON, ReceivedAt: now}
	size, err := c.accept(context.Background(), env, bytes.NewReader(raw), kind, rec.Envelope.ID)
	if err != nil {
		return "", err
	}
	// The local queue's line for a notice, with the same fields.
	nrec := queue.Record{Envelope: *env, Notice: kind, NoticeFor: rec.Envelope.ID}
	nrec.Envelope.Size = size
	c.log.Info("queued", append(queue.MsgAttrs(&nrec), "notice_to", strings.Join(to, ","))...)
	return id, nil
}
