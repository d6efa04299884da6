package queue

import (
	"context"
	"errors"
	"time"

	"github.com/graphrelay/graphrelay/graph"
)

// result is what one attempt means for the message, in both modes: queue
// mode records and schedules it, direct mode turns it into the error smtpd
// answers (outcomeError). classify is the only place that decides it, from
// Graph's or Entra's classified answer (graph.Error) and the converter's
// errors.
type result struct {
	outcome         string // "" when delivered, else an Outcome* constant
	err             error
	op              string
	status          int
	code            string
	requestID       string
	clientRequestID string
	// retryAfter is Graph's Retry-After, capped at queue.retry_max: a proxy
	// that says "retry after a day" must not outrank the admin's limits.
	retryAfter time.Duration
	ambiguous  bool
	hint       string
}

// classify turns a Send outcome into a result. Graph's own classification
// of its answer (graph.Error.Class) is kept; a message the converter
// cannot turn into a Graph message, or one too large for Graph, is
// permanent; everything else (local errors, anything unclassified) is
// transient, because a needless retry costs little and a wrong dead letter
// needs an admin. stopping tells that the queue's context was cancelled by
// Close, which interrupts rather than fails the attempt. A Retry-After is
// capped at retryMax.
func classify(rcpt graph.Receipt, err error, stopping bool, retryMax time.Duration) result {
	r := result{err: err, requestID: rcpt.RequestID, clientRequestID: rcpt.ClientRequestID}
	if err == nil {
		return r
	}
	var ge *graph.Error
	isGraph := errors.As(err, &ge)
	if isGraph {
		r.op, r.status, r.code = ge.Op, ge.Status, ge.Code
		r.retryAfter = ge.Retry()
		if retryMax > 0 && r.retryAfter > retryMax {
			r.retryAfter = retryMax
		}
		r.ambiguous = ge.Ambiguous
		if ge.RequestID != "" {
			r.requestID = ge.RequestID
		}
		if ge.ClientRequestID != "" {
			r.clientRequestID = ge.ClientRequestID
		}
	}
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		r.hint = h.Hint()
	}
	switch {
	case stopping && errors.Is(err, context.Canceled):
		r.outcome = OutcomeInterrupted
		// The request may have reached Graph before it was cancelled,
		// unless it never got past the token.
		r.ambiguous = !isGraph || ge.Op != "token"
		r.hint = "graphrelay was stopped during the attempt; it resumes at the next start"
	case isGraph && ge.Permanent():
		r.outcome = OutcomePermanent
	case has(err, func(e interface{ TooLarge() bool }) bool { return e.TooLarge() }),
		has(err, func(e interface{ InvalidContent() bool }) bool { return e.InvalidContent() }):
		r.outcome = OutcomePermanent
		if r.hint == "" {
			r.hint = "the message cannot be converted for Graph; it is kept in failed/ with the reason, and the sender must fix it"
		}
	default:
		r.outcome = OutcomeTransient
	}
	return r
}

// has reports whether err's chain holds an E for which pred is true.
func has[E any](err error, pred func(E) bool) bool {
	var e E
	return errors.As(err, &e) && pred(e)
}

// fill copies the result into the attempt record.
func (r result) fill(a *Attempt, end time.Time) {
	a.End = end
	a.Outcome = r.outcome
	a.Op, a.Status, a.Code = r.op, r.status, r.code
	a.RequestID, a.ClientRequestID = r.requestID, r.clientRequestID
	a.RetryAfter = r.retryAfter.Seconds()
	a.Ambiguous = r.ambiguous
	a.Hint = r.hint
	if r.err != nil {
		a.Error = r.err.Error()
	}
}

// lastResult rebuilds the result of a message's last attempt from its
// record, for a message that expires without a new attempt.
func lastResult(rec *Record) result {
	r := result{outcome: OutcomeTransient, hint: "its mailbox was held back (Graph's Retry-After, or pacing) past the message's deadline"}
	if a := rec.LastAttempt(); a != nil {
		r.op, r.status, r.code = a.Op, a.Status, a.Code
		r.requestID, r.clientRequestID = a.RequestID, a.ClientRequestID
		if a.Hint != "" {
			r.hint = a.Hint
		}
		if a.Error != "" {
			r.err = errors.New(a.Error)
		}
	}
	return r
}
