package smtpd

import (
	"errors"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// addressError is an envelope address refused at MAIL or RCPT. The address
// is checked and put in its one canonical form (mailhdr.Canonical) before
// the policy sees it, and that form is what is stored and sent, so that an
// address is never checked in one spelling and sent in another, and
// nothing Graph would refuse is accepted only to fail after the 250.
type addressError struct {
	sender bool
	err    *mailhdr.AddressError
}

func (e *addressError) Error() string {
	if e.sender {
		return "the sender address is unusable: " + e.err.Reason
	}
	return "the recipient address is unusable: " + e.err.Reason
}

// canonicalPath checks addr as go-smtp hands it over, without angle
// brackets, and returns its canonical form.
func canonicalPath(addr string, sender bool) (string, error) {
	c, err := mailhdr.Canonical(addr)
	if err != nil {
		var ae *mailhdr.AddressError
		if !errors.As(err, &ae) {
			ae = &mailhdr.AddressError{Reason: err.Error()}
		}
		return "", &addressError{sender: sender, err: ae}
	}
	return c, nil
}
