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
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphrelay/graphrelay/envelope"
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
			res := queue.Classify(graph.Receipt{}, &missingBody{err}, false, c.opts.RetryMax)
			c.deadLetter(m, &rec, "permanent", res, time.Now(), nil)
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
	if res.Ambiguous() {
		c.log.Warn("possible duplicate: Graph may have accepted this message although no success was seen; a retry can deliver it twice",
			append(c.msgAttrs(&rec), append([]any{"attempt", n}, res.Attrs()...)...)...)
	}
	switch res.Outcome() {
	case "":
		c.delivered(m, &rec, n, res, start, end)
	case queue.OutcomePermanent:
		c.deadLetter(m, &rec, "permanent", res, end, staged)
	case queue.OutcomeInterrupted:
		rec.NextTry = end
		if c.putRecord(context.Background(), &rec) == errChanged {
			m.Ack()
			return
		}
		c.log.Info("interrupted", append(c.msgAttrs(&rec), "attempt", n, "client_request_id", res.ClientRequestID())...)
		m.Nak()
	default:
		c.deferred(m, &rec, n, res, end, staged)
	}
}

// delivered removes a message Graph accepted: the record first, so that a
// crash before the work item's acknowledgement sends nothing again.
func (c *Cluster) delivered(m jetstream.Msg, rec *stored, n int, res queue.Result, start, end time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := rec.Envelope.ID
	if err := c.st.records.Purge(ctx, id); err != nil {
		c.log.Error("delivered, but cannot remove the record; it may be sent again", append(c.msgAttrs(rec), "err", err)...)
	}
	if err := m.DoubleAck(ctx); err != nil {
		c.log.Warn("delivered, but the cluster did not confirm the acknowledgement", append(c.msgAttrs(rec), "err", err)...)
	}
	if err := c.st.dropBody(ctx, rec); err != nil {
		c.log.Warn("delivered, but cannot remove the body from the object store", append(c.msgAttrs(rec), "err", err)...)
	}
	c.opts.Observer.Delivered(rec.Envelope.Mailbox.Address, end.Sub(rec.Envelope.ReceivedAt))
	c.log.Info("delivered", append(c.msgAttrs(rec), "attempt", n, "client_request_id", res.ClientRequestID(),
		"attempt_ms", ms(end.Sub(start)), "elapsed_ms", ms(end.Sub(rec.Envelope.ReceivedAt)))...)
}

// deferred schedules the next attempt after a transient failure, or gives
// the message up once queue.max_age has passed.
func (c *Cluster) deferred(m jetstream.Msg, rec *stored, n int, res queue.Result, now time.Time, staged io.ReaderAt) {
	deadline := rec.Expiry(c.opts.MaxAge)
	if !now.Before(deadline) {
		c.deadLetter(m, rec, "expired", res, now, staged)
		return
	}
	c.opts.Observer.DeliveryFailed(rec.Envelope.Mailbox.Address, res.Code(), queue.OutcomeTransient, true)
	delay := max(queue.Backoff(n, c.opts.RetryInitial, c.opts.RetryMax), res.RetryAfter())
	next := now.Add(delay)
	if next.After(deadline) {
		next = deadline
	}
	rec.NextTry = next
	if c.opts.DelayNoticeAfter > 0 && rec.DelayNoticeID == "" && staged != nil && c.wantsNotice(rec) &&
		now.Sub(rec.Envelope.ReceivedAt) >= c.opts.DelayNoticeAfter {
		if id, err := c.notify(queue.NoticeDelayed, rec, res, now, staged); err != nil {
			c.log.Error("cannot queue the delay notice", append(c.msgAttrs(rec), "err", err)...)
		} else {
			rec.DelayNoticeID = id
		}
	}
	if c.putRecord(context.Background(), rec) == errChanged {
		m.Ack() // an admin's change during the attempt wins
		return
	}
	c.log.Warn("deferred", append(c.msgAttrs(rec), append([]any{"attempt", n,
		"retry_in", next.Sub(now).Round(time.Millisecond).String()}, res.Attrs()...)...)...)
	m.NakWithDelay(max(next.Sub(now), time.Millisecond))
}

// deadLetter gives a message up: its record keeps the reason (and stays,
// with the body, for "queue requeue" or "queue delete"), and a notice is
// queued when configured, before the work item is acknowledged.
func (c *Cluster) deadLetter(m jetstream.Msg, rec *stored, reason string, res queue.Result, now time.Time, staged io.ReaderAt) {
	c.opts.Observer.DeliveryFailed(rec.Envelope.Mailbox.Address, res.Code(), res.Outcome(), false)
	c.opts.Observer.DeadLettered(rec.Envelope.Mailbox.Address, reason)
	d := queue.DeadLetterFor(reason, res, now)
	rec.Dead = d
	if staged != nil && c.wantsNotice(rec) {
		if id, err := c.notify(queue.NoticeFailed, rec, res, now, staged); err != nil {
			c.log.Error("cannot queue the failure notice", append(c.msgAttrs(rec), "err", err)...)
		} else {
			d.NoticeID = id
		}
	}
	if err := c.putRecord(context.Background(), rec); err == errChanged {
		m.Ack()
		return
	} else if err != nil {
		c.log.Error("cannot record the dead letter; it is retried instead", append(c.msgAttrs(rec), "err", err)...)
		m.NakWithDelay(c.opts.RetryInitial)
		return
	}
	m.Ack()
	c.log.Error("failed", append(c.msgAttrs(rec), append([]any{"reason", reason, "attempts", len(rec.Attempts),
		"notice_id", d.NoticeID}, res.Attrs()...)...)...)
}

// notify queues a notice ("failed" or "delayed") as an ordinary cluster
// message, with the local queue's text.
func (c *Cluster) notify(kind string, rec *stored, res queue.Result, now time.Time, staged io.ReaderAt) (string, error) {
	id := envelope.NewID()
	to := queue.NoticeRecipients(c.opts.NoticeTo, c.opts.NoticeToMailbox, &rec.Record)
	raw, err := queue.BuildNotice(kind, id, c.opts.NoticeMailbox.Address, to, now,
		&rec.Record, res, rec.Expiry(c.opts.MaxAge), "the cluster's dead letters (graphrelay queue failed)", staged, rec.Envelope.Size)
	if err != nil {
		return "", err
	}
	env := &envelope.Envelope{ID: id, Listener: "graphrelay", Helo: "graphrelay", Recipients: to,
		Mailbox: c.opts.NoticeMailbox, Format: envelope.FormatJSON, ReceivedAt: now}
	if _, err := c.accept(context.Background(), env, bytes.NewReader(raw), kind, rec.Envelope.ID); err != nil {
		return "", err
	}
	c.log.Info("queued", "id", id, "notice", kind, "notice_for", rec.Envelope.ID, "notice_to", strings.Join(to, ","))
	return id, nil
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

func (c *Cluster) msgAttrs(rec *stored) []any {
	e := &rec.Envelope
	attrs := []any{"id", e.ID, "client_ip", e.ClientIP, "auth_user", e.AuthUser,
		"mailbox", e.Mailbox.Address, "rcpts", len(e.Recipients), "size", e.Size}
	if rec.Notice != "" {
		attrs = append(attrs, "notice", rec.Notice, "notice_for", rec.NoticeFor)
	}
	return attrs
}

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

// wantsNotice reports whether a message's fate is worth a notice, as the
// local queue decides it.
func (c *Cluster) wantsNotice(rec *stored) bool {
	to := queue.NoticeRecipients(c.opts.NoticeTo, c.opts.NoticeToMailbox, &rec.Record)
	return queue.NoticeWanted(to, c.opts.NoticeMailbox.Address, &rec.Record)
}
