package smtpd

import (
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
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return s.authFailed(user, "PLAIN authorization identity differs from the user")
			}
			return s.authenticate(user, pass)
		}), nil
	case sasl.Login:
		return sasllogin.NewServer(s.authenticate), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

var errTooManyFailures = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
	Message: "Too many authentication failures; try again later"}

// authenticate checks a credential. Failures wait the configured delay
// before answering 535, so a wrong user and a wrong password look alike
// and guessing is slow. The password is never logged.
func (s *session) authenticate(user, pass string) error {
	ip := s.clientIP.String()
	if th := s.server.opts.Throttle; th != nil {
		if blocked, left := th.Blocked(ip); blocked {
			s.log.Warn("AUTH refused: client is locked out after repeated failures", "retry_in", left.Round(time.Second).String())
			return errTooManyFailures
		}
	}
	select {
	case s.server.verifying <- struct{}{}:
	case <-time.After(10 * time.Second):
		s.log.Warn("AUTH refused: too many password checks in progress", "hint", "many clients are authenticating at once; this may be a distributed password-guessing attack")
		return errTooManyFailures
	}
	ok := s.server.opts.Users.Verify(user, pass)
	<-s.server.verifying
	if !ok {
		return s.authFailed(user, "wrong user name or password")
	}
	if th := s.server.opts.Throttle; th != nil {
		th.Success(ip)
	}
	s.authUser, _ = s.server.opts.Users.Canonical(user)
	s.log.Info("AUTH succeeded", "user", s.authUser, "tls", s.tls)
	return nil
}

func (s *session) authFailed(user, why string) error {
	time.Sleep(s.server.opts.Auth.FailureDelay.D())
	ip := s.clientIP.String()
	lockedOut := false
	defer func() { s.server.opts.Observer.AuthFailed(s.ls.cfg.Name, lockedOut) }()
	if th := s.server.opts.Throttle; th != nil && th.Failure(ip) {
		lockedOut = true
		s.log.Warn("brute-force protection: client locked out after repeated AUTH failures",
			"lockout", s.server.opts.Auth.Lockout.D().String(),
			"hint", "if this is a device with a wrong password, fix its configuration; the lockout ends by itself")
	}
	// An unknown name is not logged: people type their password into the
	// user name field often enough.
	if name, known := s.server.opts.Users.Canonical(user); known {
		s.log.Warn("AUTH failed", "user", name, "reason", why)
	} else {
		s.log.Warn("AUTH failed", "user_known", false, "reason", why)
	}
	return smtp.ErrAuthFailed
}
