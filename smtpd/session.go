package smtpd

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/graphrelay/graphrelay/envelope"
)

type backend struct {
	server   *Server
	listener string
}

// NewSession is called by go-smtp at HELO/EHLO, and again after STARTTLS.
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ip := ""
	if addr, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		ip = addr.IP.String()
	}
	_, isTLS := c.TLSConnectionState()
	s := &session{
		server:   b.server,
		listener: b.listener,
		clientIP: ip,
		helo:     c.Hostname(),
		tls:      isTLS,
	}
	s.log = b.server.log.With("listener", b.listener, "client_ip", ip)
	return s, nil
}

// session is one SMTP connection's state between EHLO and QUIT.
type session struct {
	server   *Server
	listener string
	clientIP string
	helo     string
	tls      bool
	authUser string
	log      *slog.Logger

	from       string
	recipients []string
}

var _ smtp.Session = (*session)(nil)

func (s *session) Reset() {
	s.from = ""
	s.recipients = nil
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.Reset()
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.recipients = append(s.recipients, to)
	return nil
}

// Data reads the message, decides the mailbox from its header From, and
// hands it to the Deliverer. Every outcome goes through toSMTPError.
func (s *session) Data(r io.Reader) error {
	start := time.Now()
	env := &envelope.Envelope{
		ID:         envelope.NewID(),
		Listener:   s.listener,
		ClientIP:   s.clientIP,
		Helo:       s.helo,
		TLS:        s.tls,
		AuthUser:   s.authUser,
		From:       s.from,
		Recipients: append([]string(nil), s.recipients...),
		Format:     envelope.FormatJSON,
		ReceivedAt: start,
	}
	log := s.log.With("id", env.ID)
	err := s.receive(r, env, log)
	reply := toSMTPError(err, env.ID)
	attrs := []any{"from", env.From, "rcpts", len(env.Recipients), "size", env.Size,
		"mailbox", env.Mailbox.Address, "reply", reply.Code, "elapsed_ms", since(start)}
	if err != nil {
		log.Warn("message refused", append(attrs, "err", err, "hint", hintOf(err))...)
	} else {
		log.Info("message accepted", attrs...)
	}
	return reply
}

func (s *session) receive(r io.Reader, env *envelope.Envelope, log *slog.Logger) error {
	counted := &countingReader{r: newCRLFReader(r)}
	hdr, rest, err := readHeader(counted)
	if err != nil {
		return err
	}
	decision, err := s.server.decider.Decide(env.From, headerFrom(hdr))
	if err != nil {
		return errPolicy{err}
	}
	env.Mailbox = decision.Mailbox
	log.Debug("mailbox chosen", "mailbox", decision.Mailbox.Address, "why", decision.Why)
	msg := io.MultiReader(bytesReader(hdr), rest)
	err = s.server.deliverer.Deliver(s.server.ctx, env, &sizeTracker{r: msg, env: env})
	if err != nil {
		return err
	}
	// A Deliverer that returned early must not leave the client's stream
	// unread; draining also surfaces a size-limit or timeout error.
	if _, err := io.Copy(io.Discard, msg); err != nil {
		return err
	}
	return nil
}

// sizeTracker records how many bytes the Deliverer read, for the log line.
type sizeTracker struct {
	r   io.Reader
	env *envelope.Envelope
}

func (t *sizeTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.env.Size += int64(n)
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// errPolicy marks a refusal by the sender policy.
type errPolicy struct{ err error }

func (e errPolicy) Error() string { return "policy: " + e.err.Error() }
func (e errPolicy) Unwrap() error { return e.err }

var errHeaderTooLarge = errors.New("the header block exceeds 1 MiB")
