package convert

import "fmt"

// Error is returned by Convert for input that cannot produce any message.
// Its text names the reason only, never message content, so it is safe to
// log and to put in an SMTP reply.
type Error struct {
	reason   string
	tooLarge bool
}

func (e *Error) Error() string { return "convert: " + e.reason }

// InvalidContent reports that the message content, not the relay, is at
// fault; the SMTP layer answers 554 5.6.0. It is true for every *Error.
func (e *Error) InvalidContent() bool { return true }

// TooLarge reports that the input exceeded Options.MaxBytes. The SMTP layer
// should check it before InvalidContent and answer 552 5.3.4.
func (e *Error) TooLarge() bool { return e.tooLarge }

func errorf(format string, args ...any) *Error {
	return &Error{reason: fmt.Sprintf(format, args...)}
}
