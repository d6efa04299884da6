package smtpd

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/graphrelay/graphrelay/policy"
)

// The methods below classify errors without smtpd importing the packages
// that produce them (graph, queue), in the style of net.Error's Timeout().
type (
	permanent      interface{ Permanent() bool }
	accessDenied   interface{ AccessDenied() bool }
	tooLarge       interface{ TooLarge() bool }
	invalidContent interface{ InvalidContent() bool }
	storageFull    interface{ InsufficientStorage() bool }
	hinted         interface{ Hint() string }
	sizeLimited    interface{ SizeLimit() string }
	throttled      interface{ Throttled() bool }
	retryIn        interface{ RetryIn() time.Duration }
)

// toSMTPError is the one place where an outcome becomes an SMTP reply. The
// client sees a precise code and a fixed text with the message id; the
// cause stays in the log, because internal error text must not leak to
// clients. It always returns a bare *smtp.SMTPError: go-smtp does not
// unwrap, and turns anything else into a permanent 554.
func toSMTPError(err error, id string) *smtp.SMTPError {
	reply := func(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
		if id != "" {
			msg = fmt.Sprintf("%s [%s]", msg, id)
		}
		return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
	}
	if err == nil {
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "queued as " + id}
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, smtp.ErrDataTooLarge) {
		return smtp.ErrDataTooLarge
	}
	if errors.Is(err, smtp.ErrTooLongLine) {
		return reply(500, smtp.EnhancedCode{5, 4, 0}, "Line too long")
	}
	if errors.Is(err, errHeaderTooLarge) {
		return reply(552, smtp.EnhancedCode{5, 3, 4}, "Message header block too large")
	}
	var ae *addressError
	if errors.As(err, &ae) {
		return addressReply(ae, reply)
	}
	if errors.Is(err, errMalformedAuth) {
		return reply(501, smtp.EnhancedCode{5, 5, 2}, "Malformed authentication data")
	}
	if errors.Is(err, errAuthRequired) {
		return reply(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required")
	}
	if pe, ok := policy.As(err); ok {
		switch pe.Kind {
		case policy.AuthRequired:
			return reply(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required")
		case policy.RelayDenied:
			return reply(550, smtp.EnhancedCode{5, 7, 1}, "Relay not permitted: "+pe.Reason)
		case policy.TooManyRecipients:
			if pe.AtData {
				// The message is complete: retrying it can only fail again.
				return reply(550, smtp.EnhancedCode{5, 5, 3}, "Too many recipients: "+pe.Reason)
			}
			return reply(452, smtp.EnhancedCode{4, 5, 3}, "Too many recipients: "+pe.Reason)
		case policy.FromDenied:
			return reply(550, smtp.EnhancedCode{5, 7, 1}, "From not permitted: "+pe.Reason)
		}
		return reply(550, smtp.EnhancedCode{5, 7, 1}, "Sender not permitted: "+pe.Reason)
	}
	var rl errRateLimited
	if errors.As(err, &rl) {
		return reply(451, smtp.EnhancedCode{4, 7, 1}, "Rate limit exceeded, try again later")
	}
	if is[storageFull](err, func(e storageFull) bool { return e.InsufficientStorage() }) {
		return reply(452, smtp.EnhancedCode{4, 3, 1}, "Insufficient system storage, try again later")
	}
	if is[tooLarge](err, func(e tooLarge) bool { return e.TooLarge() }) {
		var sl sizeLimited
		if errors.As(err, &sl) && sl.SizeLimit() != "" {
			return reply(552, smtp.EnhancedCode{5, 3, 4}, "Message too large for Microsoft Graph: it exceeds the "+sl.SizeLimit())
		}
		return reply(552, smtp.EnhancedCode{5, 3, 4}, "Message too large for Microsoft Graph or the tenant's maximum message size")
	}
	if is[invalidContent](err, func(e invalidContent) bool { return e.InvalidContent() }) {
		return reply(554, smtp.EnhancedCode{5, 6, 0}, "Message content could not be converted")
	}
	if is[accessDenied](err, func(e accessDenied) bool { return e.AccessDenied() }) {
		return reply(550, smtp.EnhancedCode{5, 7, 1}, "Mailbox not permitted to send; the relay administrator must check the log")
	}
	if errors.Is(err, errConnectionLost) {
		// The client is gone and sees no reply; this one is for the log.
		return reply(451, smtp.EnhancedCode{4, 4, 2}, "Connection lost while receiving the message")
	}
	if is[throttled](err, func(e throttled) bool { return e.Throttled() }) {
		return reply(451, smtp.EnhancedCode{4, 4, 5}, "Mailbox busy at Microsoft Graph's limit, try again"+retryText(err))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return reply(451, smtp.EnhancedCode{4, 4, 2}, "Timeout while receiving the message, try again")
	}
	// Permanent is implemented only by graphrelay's own upstream errors.
	// Temporary() is not used here because syscall.Errno has it too, and a
	// local EIO must not become a permanent bounce.
	var p permanent
	if errors.As(err, &p) && p.Permanent() {
		return reply(554, smtp.EnhancedCode{5, 3, 0}, "Message permanently refused by Microsoft Graph; the relay administrator must check the log")
	}
	if errors.As(err, &p) {
		return reply(451, smtp.EnhancedCode{4, 4, 1}, "Microsoft Graph temporarily unavailable, try again"+retryText(err))
	}
	// Unknown errors are temporary: a retry costs little, a wrong bounce
	// loses mail.
	return reply(451, smtp.EnhancedCode{4, 3, 0}, "Local error in processing, try again later")
}

// retryText tells the client when to retry, when the outcome says: " in
// N seconds", else " later".
func retryText(err error) string {
	var r retryIn
	if errors.As(err, &r) {
		if d := r.RetryIn(); d > 0 {
			return fmt.Sprintf(" in %d seconds", int(max(d.Round(time.Second), time.Second)/time.Second))
		}
	}
	return " later"
}

// is reports whether err's chain holds an E whose predicate is true.
func is[E any](err error, pred func(E) bool) bool {
	for err != nil {
		if e, ok := err.(E); ok && pred(e) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if is(inner, pred) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// hintOf returns the admin-facing advice carried by err, if any.
func hintOf(err error) string {
	var h hinted
	if errors.As(err, &h) {
		return h.Hint()
	}
	if _, ok := policy.As(err); ok {
		return "no rule permits this; check the rules (first match wins) and the mailboxes list"
	}
	if errors.As(err, new(errRateLimited)) {
		return "the rule's messages_per_minute limit was reached; raise it if the sender is legitimate"
	}
	if errors.Is(err, smtp.ErrDataTooLarge) {
		return "raise smtp.max_message_bytes only if the tenant's maximum message size allows it"
	}
	return ""
}

// addressReply answers an unusable envelope address: 501 for bytes no
// address may hold (NUL, control characters, invalid UTF-8), 553 for a
// malformed mailbox and for a lookalike Unicode spelling; X.1.7 names the
// sender, X.1.3 the recipient (RFC 3463). The text names the defect, never
// the bytes.
func addressReply(ae *addressError, reply func(int, smtp.EnhancedCode, string) *smtp.SMTPError) *smtp.SMTPError {
	enh, who := smtp.EnhancedCode{5, 1, 3}, "recipient"
	if ae.sender {
		enh, who = smtp.EnhancedCode{5, 1, 7}, "sender"
	}
	switch {
	case ae.err.BadBytes:
		return reply(501, enh, "Bad "+who+" address syntax: "+ae.err.Reason)
	case ae.err.NonCanonical:
		return reply(553, enh, "The "+who+" address is not in canonical form: "+ae.err.Reason)
	}
	return reply(553, enh, "Bad "+who+" address syntax: "+ae.err.Reason)
}
