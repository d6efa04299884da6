// Package sasllogin is the server side of the SASL LOGIN mechanism, which
// go-sasl lacks (it only has a LOGIN client) and which many printers and
// scanners (Xerox, Canon, Brother) speak as their only AUTH method.
//
// LOGIN was never standardised. What clients expect in practice is
// Microsoft's [MS-XLOGIN] exchange: the server challenges "Username:", then
// "Password:", and an initial response on the AUTH line is the user name.
// The exact prompt text matters: a Xerox printer gave up on a server that
// sent the draft's "User Name\x00" (JustinIven/smtp-oauth-relay#57), so the
// prompts here are byte for byte what Exchange sends.
//
// go-smtp base64-encodes the challenges, decodes the responses and handles
// a "*" cancel itself; this package sees raw bytes only.
package sasllogin

import (
	"bytes"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mechanism is the name to list in AuthMechanisms and match in Auth.
const Mechanism = sasl.Login

// MaxFieldLen bounds a user name or password. RFC 4616 (PLAIN) allows 255
// characters per field; 512 bytes leaves room for UTF-8 while keeping a
// misbehaving client from feeding a large value into bcrypt or the logs.
const MaxFieldLen = 512

var (
	challengeUsername = []byte("Username:")
	challengePassword = []byte("Password:")
)

// Errors for malformed responses. They are bare *smtp.SMTPError values
// because go-smtp only recognises an unwrapped *smtp.SMTPError and turns
// anything else into a temporary "454 4.7.0 <text>", which would make a
// misconfigured device retry forever. 501 5.5.2 is RFC 4954's reply for a
// response the server cannot parse; none of them says which field was
// wrong beyond "user name" or "password", and none echoes the value.
var (
	ErrEmptyUsername   = syntaxError("Empty user name")
	ErrEmptyPassword   = syntaxError("Empty password")
	ErrLongUsername    = syntaxError("User name too long")
	ErrLongPassword    = syntaxError("Password too long")
	ErrBadUsername     = syntaxError("Malformed user name")
	ErrBadPassword     = syntaxError("Malformed password")
	ErrUnexpectedInput = syntaxError("Unexpected LOGIN response")
)

func syntaxError(msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: msg}
}

// NewServer returns a LOGIN sasl.Server. authenticate runs once both fields
// are in; its error is returned to go-smtp unchanged (never wrapped), so
// returning smtp.ErrAuthFailed yields "535 5.7.8".
//
// Tolerance, decided per field after base64 decoding:
//   - One trailing terminator is removed: a NUL (clients that send a C
//     string's terminator), or CRLF, LF or CR (clients that encoded
//     "name\n" the way `echo name | base64` does). graphrelay passwd
//     refuses passwords containing NUL, CR or LF, so removing one can never
//     turn a wrong password into a right one.
//   - A NUL, CR or LF left anywhere else is refused: "\x00user\x00pass" is
//     a PLAIN response sent to LOGIN, and guessing which part is meant
//     would be guessing at credentials.
//   - Spaces are kept: they are legal in passwords, and trimming them
//     would silently accept a different password.
//   - An empty field, including "AUTH LOGIN =" (an empty initial
//     response), or one over MaxFieldLen bytes is refused.
func NewServer(authenticate func(username, password string) error) sasl.Server {
	return &server{authenticate: authenticate}
}

type state int

const (
	wantStart state = iota
	wantUsername
	wantPassword
	finished
)

type server struct {
	authenticate func(username, password string) error
	state        state
	username     string
}

func (s *server) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.state {
	case wantStart:
		// go-smtp passes a nil response when the AUTH line had no initial
		// response, and a non-nil (possibly empty) one when it had.
		if response == nil {
			s.state = wantUsername
			return challengeUsername, false, nil
		}
		return s.takeUsername(response)
	case wantUsername:
		return s.takeUsername(response)
	case wantPassword:
		s.state = finished
		password, err := field(response, ErrEmptyPassword, ErrLongPassword, ErrBadPassword)
		if err != nil {
			return nil, false, err
		}
		if err := s.authenticate(s.username, password); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	}
	return nil, false, ErrUnexpectedInput
}

func (s *server) takeUsername(response []byte) ([]byte, bool, error) {
	username, err := field(response, ErrEmptyUsername, ErrLongUsername, ErrBadUsername)
	if err != nil {
		s.state = finished
		return nil, false, err
	}
	s.username = username
	s.state = wantPassword
	return challengePassword, false, nil
}

// field applies the tolerance rules documented on NewServer.
func field(b []byte, errEmpty, errLong, errBad error) (string, error) {
	switch {
	case bytes.HasSuffix(b, []byte("\r\n")):
		b = b[:len(b)-2]
	case bytes.HasSuffix(b, []byte{0}), bytes.HasSuffix(b, []byte("\n")), bytes.HasSuffix(b, []byte("\r")):
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return "", errEmpty
	}
	if len(b) > MaxFieldLen {
		return "", errLong
	}
	if bytes.ContainsAny(b, "\x00\r\n") {
		return "", errBad
	}
	return string(b), nil
}
