package smtpd

import "time"

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
}

type nopObserver struct{}

func (nopObserver) ConnectionOpened(string)                                   {}
func (nopObserver) ConnectionClosed(string)                                   {}
func (nopObserver) ConnectionRefused(string, int)                             {}
func (nopObserver) AuthFailed(string, bool)                                   {}
func (nopObserver) MessageAnswered(string, int, string, int64, time.Duration) {}
