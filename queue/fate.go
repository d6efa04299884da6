package queue

import (
	"log/slog"
	"strings"
	"time"
)

// Holder keeps one message while the outcome of its attempt is settled:
// the local spool (spoolHolder), or the cluster's stream and buckets
// (package cluster). Fate decides what becomes of the message; the
// holder only carries it out on its storage, so both backends retry,
// expire, dead-letter, notify, count and log alike.
//
// A holder logs its own storage errors. Retry and Bury return an error
// only when they did not carry the outcome out (an admin's change made
// during the attempt stands, or the message is tried again instead of
// being buried), and Fate then logs no outcome line for it. Done comes
// last, after the outcome's log line, so that whoever sees the message
// leave or wait again finds the line already written.
type Holder interface {
	// Record is the message's record, which Fate updates (NextTry, Dead,
	// DelayNoticeID) before Retry or Bury store it.
	Record() *Record
	// Deleted reports that an admin deleted the message during the
	// attempt.
	Deleted() bool
	// Remove forgets a message that was delivered or deleted. Its error
	// means the message may be sent again.
	Remove() error
	// Retry stores the record and schedules the next attempt at its
	// NextTry.
	Retry() error
	// Bury stores the record, now a dead letter (Dead is set), where the
	// dead letters are kept.
	Bury() error
	// Notify queues a notice of kind (NoticeFailed, NoticeDelayed) about
	// the message and returns the notice's queue id.
	Notify(kind string, res Result, now time.Time) (string, error)
	// Done lets go of the message once its outcome is settled: it waits
	// for its next attempt, or it is gone.
	Done()
}

// Fate is the retry, expiry and notice settings with which every queue
// backend settles an attempt's outcome: the one place that turns a
// classified result into delivered, deferred, interrupted or dead.
type Fate struct {
	// RetryInitial and RetryMax shape the backoff; MaxAge is when a
	// message that keeps failing is given up.
	RetryInitial, RetryMax, MaxAge time.Duration
	// NoticeTo, NoticeToMailbox and NoticeMailbox say who is told about
	// dead letters, and after DelayNoticeAfter (0: never) about a message
	// still waiting (see Options).
	NoticeTo         []string
	NoticeToMailbox  bool
	NoticeMailbox    string
	DelayNoticeAfter time.Duration
	Observer         Observer
	Log              *slog.Logger
}

// Settle decides what becomes of the message after its attempt n, which
// ran from start to end with the result res, and has h carry it out.
func (f *Fate) Settle(h Holder, n int, res Result, start, end time.Time) {
	f.settle(h, n, res.r, start, end)
}

// Expire gives up a message whose queue.max_age passed while it waited,
// without a new attempt; res describes its last attempt.
func (f *Fate) Expire(h Holder, res Result, now time.Time) {
	defer h.Done()
	f.bury(h, "expired", res.r, now)
}

func (f *Fate) settle(h Holder, n int, res result, start, end time.Time) {
	defer h.Done()
	rec := h.Record()
	if res.ambiguous {
		f.Log.Warn("possible duplicate: Graph may have accepted this message although no success was seen; a retry can deliver it twice",
			append(MsgAttrs(rec), "attempt", n, "client_request_id", res.clientRequestID, "request_id", res.requestID, "err", res.err)...)
	}
	switch {
	case res.outcome == "":
		f.delivered(h, n, res, start, end)
	case h.Deleted():
		attrs := MsgAttrs(rec)
		if err := h.Remove(); err != nil {
			f.Log.Error("cannot delete message", append(attrs, "err", err)...)
		}
		f.Log.Info("deleted by admin", attrs...)
	case res.outcome == OutcomePermanent:
		f.bury(h, "permanent", res, end)
	case res.outcome == OutcomeInterrupted:
		// Resume as soon as the daemon, or another relay, can.
		rec.NextTry = end
		attrs := append(MsgAttrs(rec), "attempt", n, "client_request_id", res.clientRequestID)
		if h.Retry() == nil {
			f.Log.Info("interrupted", attrs...)
		}
	default:
		f.deferred(h, n, res, end)
	}
}

// delivered removes a message Graph accepted.
func (f *Fate) delivered(h Holder, n int, res result, start, end time.Time) {
	rec := h.Record()
	attrs := append(MsgAttrs(rec), "attempt", n, "request_id", res.requestID,
		"client_request_id", res.clientRequestID, "attempt_ms", ms(end.Sub(start)),
		"elapsed_ms", ms(end.Sub(rec.Envelope.ReceivedAt)))
	if err := h.Remove(); err != nil {
		f.Log.Error("delivered, but cannot remove it from the queue; it may be sent again", append(MsgAttrs(rec), "err", err)...)
	}
	f.Observer.Delivered(rec.Envelope.Mailbox.Address, end.Sub(rec.Envelope.ReceivedAt))
	f.Log.Info("delivered", attrs...)
}

// deferred schedules the next attempt after a transient failure, or gives
// the message up when queue.max_age has passed.
func (f *Fate) deferred(h Holder, n int, res result, now time.Time) {
	rec := h.Record()
	deadline := rec.expiry(f.MaxAge)
	if !now.Before(deadline) {
		f.bury(h, "expired", res, now)
		return
	}
	f.Observer.DeliveryFailed(rec.Envelope.Mailbox.Address, res.code, OutcomeTransient, true)
	delay := max(fullJitter(backoffCeiling(n, f.RetryInitial, f.RetryMax)), res.retryAfter)
	// The last attempt is made at the deadline itself.
	next := min64(now.Add(delay), deadline)
	rec.NextTry = next
	if f.DelayNoticeAfter > 0 && rec.DelayNoticeID == "" && f.wantsNotice(rec) &&
		now.Sub(rec.Envelope.ReceivedAt) >= f.DelayNoticeAfter {
		if id, err := h.Notify(noticeDelayed, Result{res}, now); err != nil {
			f.Log.Error("cannot queue the delay notice", append(MsgAttrs(rec), "err", err)...)
		} else {
			rec.DelayNoticeID = id
		}
	}
	attrs := append(MsgAttrs(rec), "attempt", n, "op", res.op, "status", res.status, "code", res.code,
		"request_id", res.requestID, "client_request_id", res.clientRequestID, "ambiguous", res.ambiguous,
		"retry_in", next.Sub(now).Round(time.Millisecond).String(), "elapsed_ms", ms(now.Sub(rec.Envelope.ReceivedAt)),
		"err", res.err, "hint", res.hint)
	if h.Retry() == nil {
		f.Log.Warn("deferred", attrs...)
	}
}

// bury gives a message up: it records why, counts it, queues a notice
// (see wantsNotice for who is told) and has the holder keep it as a dead
// letter. The notice is queued before the dead letter is stored, so a
// crash in between can repeat a notice but never lose one.
func (f *Fate) bury(h Holder, reason string, res result, now time.Time) {
	rec := h.Record()
	f.Observer.DeliveryFailed(rec.Envelope.Mailbox.Address, res.code, res.outcome, false)
	f.Observer.DeadLettered(rec.Envelope.Mailbox.Address, reason)
	d := &DeadLetter{At: now, Reason: reason, Status: res.status, Code: res.code,
		RequestID: res.requestID, Hint: res.hint}
	if res.err != nil {
		d.Error = res.err.Error()
	}
	if reason == "expired" {
		d.Hint = "Graph kept failing temporarily until queue.max_age passed; the last error says why. " + res.hint
	}
	rec.Dead = d
	if f.wantsNotice(rec) {
		if id, err := h.Notify(noticeFailed, Result{res}, now); err != nil {
			f.Log.Error("cannot queue the failure notice", append(MsgAttrs(rec), "err", err)...)
		} else {
			d.NoticeID = id
		}
	}
	attrs := append(MsgAttrs(rec), "reason", reason, "attempts", len(rec.Attempts),
		"op", res.op, "status", res.status, "code", res.code, "request_id", res.requestID,
		"client_request_id", res.clientRequestID, "elapsed_ms", ms(now.Sub(rec.Envelope.ReceivedAt)),
		"err", res.err, "hint", d.Hint, "notice_id", d.NoticeID)
	if h.Bury() == nil {
		f.Log.Error("failed", attrs...)
	}
}

// wantsNotice reports whether a message's fate is worth a notice: someone
// is to be told, the message is not itself a notice, and it does not have
// the null sender <> (bounces and other automatic mail, RFC 5321 §4.5.5,
// which must never cause mail loops).
func (f *Fate) wantsNotice(rec *Record) bool {
	return len(f.NoticeRecipients(rec)) > 0 && f.NoticeMailbox != "" &&
		rec.Notice == "" && rec.Envelope.From != ""
}

// NoticeRecipients are who is told about rec: queue.notice_to's
// addresses, and by default the mailbox the message was to be sent as,
// which is where Exchange puts its own non-delivery reports, so that a
// dead letter reaches a human without any setting.
func (f *Fate) NoticeRecipients(rec *Record) []string {
	to := append([]string(nil), f.NoticeTo...)
	if a := rec.Envelope.Mailbox.Address; f.NoticeToMailbox && a != "" {
		dup := false
		for _, t := range to {
			dup = dup || strings.EqualFold(t, a)
		}
		if !dup {
			to = append(to, a)
		}
	}
	return to
}

// MsgAttrs are the fields every per-message log line carries.
func MsgAttrs(rec *Record) []any {
	e := &rec.Envelope
	attrs := []any{"id", e.ID, "client_ip", e.ClientIP, "auth_user", e.AuthUser,
		"mailbox", e.Mailbox.Address, "rcpts", len(e.Recipients), "size", e.Size}
	if rec.Notice != "" {
		attrs = append(attrs, slog.String("notice", rec.Notice), slog.String("notice_for", rec.NoticeFor))
	}
	return attrs
}
