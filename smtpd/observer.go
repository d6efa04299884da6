package smtpd

import (
	"errors"
	"time"

	"github.com/graphrelay/graphrelay/policy"
)

// Observer receives the SMTP side's events for metrics. It is optional;
// every method must be cheap and safe for concurrent use.
type Observer interface {
	ConnectionOpened(listener string)
	ConnectionClosed(listener string)
	ConnectionRefused(listener string, code int)
	AuthFailed(listener string, lockedOut bool)
	// MessageAnswered is called once per DATA with the final reply and the
	// time from the end of DATA to the reply.
	MessageAnswered(listener string, code int, enhanced string, size int64, elapsed time.Duration)
	// CommandRefused is a MAIL or RCPT refused with code, for a reason
	// from refusalReason (a small fixed set, fit for a metrics label).
	CommandRefused(listener, command string, code int, reason string)
}

type nopObserver struct{}

func (nopObserver) ConnectionOpened(string)                                   {}
func (nopObserver) ConnectionClosed(string)                                   {}
func (nopObserver) ConnectionRefused(string, int)                             {}
func (nopObserver) AuthFailed(string, bool)                                   {}
func (nopObserver) MessageAnswered(string, int, string, int64, time.Duration) {}
func (nopObserver) CommandRefused(string, string, int, string)                {}

// refusalReason names why a MAIL or RCPT was refused: relay_denied,
// sender_denied, auth_required, too_many_recipients, from_denied,
// bad_address or other.
func refusalReason(err error) string {
	if pe, ok := policy.As(err); ok {
		switch pe.Kind {
		case policy.AuthRequired:
			return "auth_required"
		case policy.SenderDenied:
			return "sender_denied"
		case policy.RelayDenied:
			return "relay_denied"
		case policy.TooManyRecipients:
			return "too_many_recipients"
		case policy.FromDenied:
			return "from_denied"
		}
	}
	var ae *addressError
	switch {
	case errors.Is(err, errAuthRequired):
		return "auth_required"
	case errors.As(err, &ae):
		return "bad_address"
	}
	return "other"
}

// refuse answers a refused MAIL or RCPT, counting it for metrics.
func (s *session) refuse(command string, err error) error {
	reply := toSMTPError(err, "")
	s.server.opts.Observer.CommandRefused(s.ls.cfg.Name, command, reply.Code, refusalReason(err))
	return reply
}
