package smtpd

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/internal/sasllogin"
)

// AuthMechanisms offers PLAIN and LOGIN (printers such as Xerox speak only
// LOGIN) on listeners that use AUTH. go-smtp itself hides AUTH until TLS,
// unless the listener is loopback or explicitly allows insecure AUTH.
func (s *session) AuthMechanisms() []string {
	if s.ls.cfg.Auth == config.AuthNone || s.server.opts.Users == nil {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth returns the SASL server for mech.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.ls.cfg.Auth == config.AuthNone || s.server.opts.Users == nil {
		return nil, smtp.ErrAuthUnsupported
	}
	switch mech {
	case sasl.Plain:
		return plainServer{sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return s.authFailed(user, "PLAIN authorization identity differs from the user", nil)
			}
			return s.authenticate(user, pass)
		})}, nil
	case sasl.Login:
		return sasllogin.NewServer(s.authenticate), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// errMalformedAuth is a SASL response that cannot be parsed: a client
// bug, not a guess, so it is answered 501 5.5.2 (RFC 4954) and not
// counted as a failure.
var errMalformedAuth = errors.New("malformed SASL response")

// plainServer refuses a PLAIN response that is not
// "authzid NUL authcid NUL passwd" with non-empty authcid and passwd (RFC
// 4616) before go-sasl sees it: go-sasl answers such a response with a
// plain error, which go-smtp would turn into a temporary 454.
type plainServer struct{ sasl.Server }

func (p plainServer) Next(response []byte) ([]byte, bool, error) {
	if response != nil {
		parts := bytes.Split(response, []byte{0})
		if len(parts) != 3 || len(parts[1]) == 0 || len(parts[2]) == 0 {
			return nil, false, toSMTPError(errMalformedAuth, "")
		}
	}
	return p.Server.Next(response)
}

var errTooManyFailures = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
	Message: "Too many authentication failures; try again later"}

// authenticate checks a credential. Failures wait the configured delay
// before answering 535, so a wrong user and a wrong password look alike
// and guessing is slow. The throttle reserves the check before it runs, so
// parallel connections from one client get no more guesses than one
// (auth.Throttle.Begin). The password is never logged.
func (s *session) authenticate(user, pass string) error {
	ip := s.clientIP.String()
	ctx, cancel := context.WithTimeout(s.server.ctx, 10*time.Second)
	defer cancel()
	var done func(checked, ok bool) bool
	if th := s.server.opts.Throttle; th != nil {
		d, left := th.Begin(ctx, ip)
		if d == nil {
			if left > 0 {
				s.log.Warn("AUTH refused: client is locked out after repeated failures", "retry_in", left.Round(time.Second).String())
			} else {
				s.log.Warn("AUTH refused: too many of this client's password checks in progress", "hint", "the client opens many connections that authenticate at once; if it keeps failing it will be locked out")
			}
			return errTooManyFailures
		}
		done = d
		// A panic in Verify must not keep the reservation forever; after
		// the real report this does nothing.
		defer done(true, false)
	}
	select {
	case s.server.verifying <- struct{}{}:
	case <-ctx.Done():
		s.log.Warn("AUTH refused: too many password checks in progress", "hint", "many clients are authenticating at once; this may be a distributed password-guessing attack")
		if done != nil {
			done(false, false) // nothing was checked: free the reservation uncounted
		}
		return errTooManyFailures
	}
	ok := s.server.opts.Users.Verify(user, pass)
	<-s.server.verifying
	if !ok {
		return s.authFailed(user, "wrong user name or password", done)
	}
	if done != nil {
		done(true, true)
	}
	s.authUser, _ = s.server.opts.Users.Canonical(user)
	s.log.Info("AUTH succeeded", "user", s.authUser, "tls", s.tls)
	return nil
}

// authFailed counts a failure through done (the reservation from
// authenticate) or, with done nil, directly, then answers after the
// failure delay. Counting first lets the lockout reach the client's
// other connections while this one waits.
func (s *session) authFailed(user, why string, done func(checked, ok bool) bool) error {
	ip := s.clientIP.String()
	lockedOut := false
	switch th := s.server.opts.Throttle; {
	case done != nil:
		lockedOut = done(true, false)
	case th != nil:
		lockedOut = th.Failure(ip)
	}
	defer func() { s.server.opts.Observer.AuthFailed(s.ls.cfg.Name, lockedOut) }()
	if lockedOut {
		s.log.Warn("brute-force protection: client locked out after repeated AUTH failures",
			"lockout", s.server.opts.Auth.Lockout.D().String(),
			"hint", "if this is a device with a wrong password, fix its configuration; the lockout ends by itself")
	}
	time.Sleep(s.server.opts.Auth.FailureDelay.D())
	// An unknown name is not logged: people type their password into the
	// user name field often enough.
	if name, known := s.server.opts.Users.Canonical(user); known {
		s.log.Warn("AUTH failed", "user", name, "reason", why)
	} else {
		s.log.Warn("AUTH failed", "user_known", false, "reason", why)
	}
	return smtp.ErrAuthFailed
}
