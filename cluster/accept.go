package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/queue"
)

// Deliver stores the message in the cluster and returns nil only once
// JetStream has acknowledged the body, the record and the work item with
// the configured replication.
func (c *Cluster) Deliver(ctx context.Context, env *envelope.Envelope, msg io.Reader) error {
	start := time.Now()
	if c.stopping.Load() {
		return &StoreError{Op: "accept", Err: errStopping}
	}
	size, err := c.accept(ctx, env, msg, "", "")
	if err != nil {
		return err
	}
	// As with the local spool, the SMTP session's "message accepted" line,
	// written before the 250, carries the same fields; this one adds the
	// cluster's storage time, for debugging.
	c.log.Debug("queued", "id", env.ID, "client_ip", env.ClientIP, "auth_user", env.AuthUser,
		"mailbox", env.Mailbox.Address, "rcpts", len(env.Recipients), "size", size,
		"elapsed_ms", float64(time.Since(start).Microseconds())/1000, "backend", "jetstream")
	return nil
}

// accept writes the body, the record and the work item, removing what was
// written when a later step fails. notice marks a message graphrelay
// generated itself.
func (c *Cluster) accept(ctx context.Context, env *envelope.Envelope, msg io.Reader, notice, noticeFor string) (int64, error) {
	if !c.st.nc.IsConnected() {
		// Answer 451 at once rather than after StoreTimeout.
		return 0, &StoreError{Op: "accept", Err: fmt.Errorf("not connected to NATS (%s)", c.st.nc.Status())}
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.StoreTimeout)
	defer cancel()
	b, err := c.serve(ctx, env.Mailbox.Address)
	if err != nil {
		return 0, &StoreError{Op: "consumer", Err: err}
	}
	src := &sourceReader{r: msg}
	inline, size, err := c.st.putBody(ctx, env.ID, src)
	if err != nil {
		if src.err != nil {
			// Errors from the SMTP stream (size limit, timeout) pass
			// unchanged so the reply names them.
			return 0, src.err
		}
		return 0, &StoreError{Op: "store the body", Err: err}
	}
	e := *env
	e.Recipients = append([]string(nil), env.Recipients...)
	e.Size = size
	rec := stored{Record: *queue.NewRecord(queue.Record{Envelope: e, Notice: notice, NoticeFor: noticeFor, NextTry: time.Now()}), Gen: 1}
	rec.setBody(inline)
	if err := c.publish(ctx, b.token, &rec); err != nil {
		c.st.records.Purge(context.Background(), env.ID)
		if !rec.Inline {
			c.st.removeBody(context.Background(), env.ID)
		}
		return 0, err
	}
	return e.Size, nil
}

// publish writes the record and then its work item.
func (c *Cluster) publish(ctx context.Context, token string, rec *stored) error {
	id := rec.Envelope.ID
	if _, err := c.st.records.Put(ctx, id, encode(rec)); err != nil {
		return &StoreError{Op: "store the record", Err: err}
	}
	w := workItem{ID: id, Gen: rec.Gen}
	if _, err := c.st.js.Publish(ctx, subjectPrefix+token, encode(w),
		jetstream.WithMsgID(id+"."+strconv.Itoa(rec.Gen)), jetstream.WithExpectStream(streamQueue)); err != nil {
		return &StoreError{Op: "store the work item", Err: err}
	}
	return nil
}

// sourceReader remembers an error of the SMTP stream, to tell it from a
// storage failure.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
}

// fullReader fills every Read completely unless the source ends. The
// object store stores each Read as one chunk, and the SMTP DATA reader
// returns about a line at a time: unfilled, a 30 MB message became
// hundreds of thousands of tiny chunks and stalled the publisher.
type fullReader struct{ r io.Reader }

func (f fullReader) Read(p []byte) (int, error) {
	n, err := io.ReadFull(f.r, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil // the rest; the next Read returns io.EOF
	}
	return n, err
}
