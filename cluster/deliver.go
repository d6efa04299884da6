package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/queue"
)

// fetchLoop takes one message at a time from the mailbox's consumer and
// delivers it. Each relay runs max_concurrency of them per mailbox, so it
// never holds more messages than the mailbox could send at once.
func (c *Cluster) fetchLoop(b *box) {
	defer c.wg.Done()
	for c.fetchCtx.Err() == nil {
		batch, err := b.cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			if c.fetchCtx.Err() == nil {
				c.log.Debug("fetch failed; trying again", "mailbox", b.address, "err", err)
				sleep(c.fetchCtx, time.Second)
			}
			continue
		}
		for m := range batch.Messages() {
			c.handle(b, m)
		}
	}
}

// handle delivers one work item.
func (c *Cluster) handle(b *box, m jetstream.Msg) {
	var w workItem
	if err := json.Unmarshal(m.Data(), &w); err != nil || !queue.ValidID(w.ID) {
		c.log.Error("dropping a malformed work item from the stream", "mailbox", b.address, "err", err)
		m.Term()
		return
	}
	ctx := c.ctx
	// Through the leader: a lagging replica's "not found" must not make
	// us drop accepted mail (leader.go).
	recp, err := c.st.getRecord(ctx, w.ID)
	if err != nil {
		if isNotFound(err) {
			m.Ack() // delivered or deleted meanwhile
			return
		}
		c.log.Warn("cannot read the message record; retrying", "id", w.ID, "err", err)
		m.NakWithDelay(time.Second)
		return
	}
	rec := *recp
	if rec.Gen != w.Gen || rec.Dead != nil {
		m.Ack() // superseded by "retry" or "requeue", or a dead letter
		return
	}
	// Keep the message ours while we wait and send.
	stopKeep := make(chan struct{})
	go keepAlive(m, c.opts.Lease/3, stopKeep)
	defer close(stopKeep)

	if last := rec.LastAttempt(); last != nil && last.Outcome == queue.OutcomeStarted {
		last.Outcome, last.Ambiguous = queue.OutcomeInterrupted, true
		last.Hint = "the relay making this attempt stopped or lost the cluster during it; another relay retries"
		c.log.Warn("attempt was interrupted: the relay holding it died or lost the cluster; Graph may have sent it, so a retry can deliver it twice (possible duplicate)",
			append(c.msgAttrs(&rec), "attempt", last.N, "client_request_id", last.ClientRequestID)...)
	}

	staged, err := c.stage(ctx, &rec)
	if err != nil {
		if isNotFound(err) {
			// Never sent, so no attempt is added: the dead letter's reason
			// is the missing body.
			res := queue.Classify(graph.Receipt{}, &missingBody{err}, false, c.opts.RetryMax)
			now := time.Now()
			c.fate.Settle(&streamHolder{c: c, m: m, rec: &rec}, len(rec.Attempts), res, now, now)
			return
		}
		c.log.Warn("cannot read the message body from the cluster; retrying", append(c.msgAttrs(&rec), "err", err)...)
		m.NakWithDelay(time.Second)
		return
	}
	defer staged.Close()

	// Record the attempt before waiting for the mailbox's slot, as the
	// local queue records it before its request slot: the slot is then
	// held only for the request itself.
	n := len(rec.Attempts) + 1
	start := time.Now()
	rec.Attempts = append(rec.Attempts, queue.Attempt{N: n, Start: start, Outcome: queue.OutcomeStarted})
	if meta, err := m.Metadata(); err == nil {
		rec.Seq = meta.Sequence.Stream
	}
	if err := c.putRecord(ctx, &rec); err != nil {
		if errors.Is(err, errChanged) {
			m.Ack() // deleted, retried or requeued by an admin meanwhile
			return
		}
		c.log.Error("cannot record the delivery attempt, so it is not made; retrying", append(c.msgAttrs(&rec), "err", err)...)
		m.NakWithDelay(time.Second)
		return
	}
	// Close stops new requests at once: waiting for a slot ends with
	// fetchCtx, while requests in flight run on ctx until the deadline.
	l, err := c.gate.acquire(c.fetchCtx, b)
	if err == nil {
		select {
		case c.workers <- struct{}{}:
		case <-c.fetchCtx.Done():
			c.gate.release(b.token, l)
			err = c.fetchCtx.Err()
		}
	}
	if err != nil {
		// Stopping before the request went out: not ambiguous.
		rec.Attempts[n-1] = queue.Attempt{N: n, Start: start, End: time.Now(), Outcome: queue.OutcomeInterrupted,
			Hint: "graphrelay was stopped before the request was sent; another relay sends it"}
		if c.putRecord(context.Background(), &rec) == nil {
			m.Nak()
		}
		return
	}
	rcpt, err := c.sender.Send(ctx, &rec.Envelope, staged, rec.Envelope.Size)
	res := queue.Classify(rcpt, err, c.stopping.Load(), c.opts.RetryMax)
	end := time.Now()
	if ra := res.RetryAfter(); ra > 0 || res.Status() == http.StatusTooManyRequests {
		// Before the slot is released, so no relay starts a request
		// for the mailbox in between.
		added, ferr := c.gate.raiseFloor(context.Background(), b.token, end.Add(ra))
		if ferr != nil {
			c.log.Warn("cannot share the Retry-After floor with the other relays", "mailbox", b.address, "err", ferr)
		}
		c.opts.Observer.Throttled(b.address, res.Status() == http.StatusTooManyRequests, added)
	}
	<-c.workers
	c.gate.release(b.token, l)
	res.Fill(&rec.Attempts[n-1], end)
	c.fate.Settle(&streamHolder{c: c, m: m, rec: &rec, body: staged}, n, res, start, end)
}

// stage returns the body with random access, as the Sender needs: an
// inline body as it is, and one from the object store copied into a
// temporary file, because a 35 MB message must not be held in memory.
// Close removes the file.
func (c *Cluster) stage(ctx context.Context, rec *stored) (stagedBody, error) {
	if rec.Inline {
		return inlineBody{bytes.NewReader(rec.Body)}, nil
	}
	f, err := os.CreateTemp(c.opts.StageDir, "graphrelay-"+rec.Envelope.ID+"-*.eml")
	if err != nil {
		return nil, err
	}
	if err := c.st.readBody(ctx, rec.Envelope.ID, f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return stagedFile{f}, nil
}

// stagedBody is a message body ready to send.
type stagedBody interface {
	io.ReaderAt
	io.Closer
}

type inlineBody struct{ *bytes.Reader }

func (inlineBody) Close() error { return nil }

type stagedFile struct{ *os.File }

func (f stagedFile) Close() error {
	err := f.File.Close()
	os.Remove(f.Name())
	return err
}

// putRecord writes the record if nobody changed it since it was read;
// errChanged means an admin deleted, retried or requeued the message
// meanwhile, and the admin's version stands.
func (c *Cluster) putRecord(ctx context.Context, rec *stored) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rev, err := c.st.records.Update(ctx, rec.Envelope.ID, encode(rec), rec.rev)
	if err == nil {
		rec.rev = rev
		return nil
	}
	if isConflict(err) {
		// Superseded only if the record is gone, or an admin started a
		// new generation of it or made it a dead letter; otherwise
		// another relay holds the message too (it outlived a lease), and
		// it must stay in the stream.
		cur, gerr := c.st.getRecord(ctx, rec.Envelope.ID)
		if isNotFound(gerr) || (gerr == nil && (cur.Gen != rec.Gen || (cur.Dead != nil && rec.Dead == nil))) {
			c.log.Info("changed by an admin during the attempt; the admin's change stands", c.msgAttrs(rec)...)
			return errChanged
		}
		err = fmt.Errorf("the record changed during the attempt (another relay holds the message too): %w", err)
	}
	c.log.Error("cannot update the message record", append(c.msgAttrs(rec), "err", err)...)
	return err
}

var errChanged = errors.New("the record was changed by an admin")

// keepAlive tells JetStream the message is still being worked on, so it
// is redelivered only after a relay stopped for a whole lease.
func keepAlive(m jetstream.Msg, every time.Duration, stop chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			m.InProgress()
		}
	}
}

func (c *Cluster) msgAttrs(rec *stored) []any { return queue.MsgAttrs(&rec.Record) }

// missingBody is a record whose body is gone from the object store: it
// can never be sent.
type missingBody struct{ err error }

func (e *missingBody) Error() string {
	return "the message body is missing from the cluster's object store: " + e.err.Error()
}
func (e *missingBody) InvalidContent() bool { return true }
func (e *missingBody) Hint() string {
	return "the body was removed outside graphrelay; the message cannot be sent"
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
