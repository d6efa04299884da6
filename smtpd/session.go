package smtpd

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/policy"
)

type backend struct {
	server *Server
	ls     *listenerServer
}

// NewSession is called by go-smtp at HELO/EHLO, and again after STARTTLS,
// which also clears any authentication, as RFC 3207 requires.
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ip := netip.Addr{}
	tc, ok := unwrapTracked(c)
	if ok {
		ip = tc.ip
	}
	_, isTLS := c.TLSConnectionState()
	s := &session{
		server:   b.server,
		ls:       b.ls,
		clientIP: ip,
		conn:     tc,
		helo:     c.Hostname(),
		tls:      isTLS,
	}
	s.log = b.server.log.With("listener", b.ls.cfg.Name, "client_ip", ip.String())
	return s, nil
}

// session is one SMTP connection's state between EHLO and QUIT.
type session struct {
	server   *Server
	ls       *listenerServer
	clientIP netip.Addr
	// conn is nil only in tests that bypass the listener; it marks the
	// session busy during a transaction and frees its slot.
	conn     *trackedConn
	helo     string
	tls      bool
	authUser string
	log      *slog.Logger

	from       string
	recipients []string
	pending    *policy.Pending
	// eof is when the message stream ended, for the DATA-to-reply latency.
	eof time.Time
}

var _ smtp.AuthSession = (*session)(nil)

// Reset ends a transaction (RSET, after DATA's reply, a new EHLO). The
// session is idle again, and during a shutdown it is closed now rather
// than when the deadline comes.
func (s *session) Reset() {
	s.from = ""
	s.recipients = nil
	s.pending = nil
	if s.conn != nil {
		s.conn.busy.Store(false)
		if s.server.closing.Load() {
			s.conn.Close()
		}
	}
}

// Logout is called by go-smtp when the connection closes, and for a
// plain session also at STARTTLS, when the TLS session replaces it. A TLS
// session can only end with the connection (a second STARTTLS is
// refused), so its Logout frees the connection's slot at once, before the
// TLS close_notify is written (trackedConn).
func (s *session) Logout() error {
	if s.tls && s.conn != nil {
		s.conn.releaseSlot()
	}
	return nil
}

var errAuthRequired = errors.New("authentication required on this listener")

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.Reset()
	if s.conn != nil {
		s.conn.busy.Store(true)
	}
	if s.ls.cfg.Auth == config.AuthRequired && s.authUser == "" {
		s.log.Info("MAIL refused: authentication required", "from", from)
		return s.refuse("MAIL", errAuthRequired)
	}
	if from != "" {
		c, err := canonicalPath(from, true)
		if err != nil {
			s.log.Warn("MAIL refused: unusable sender address", "from", from, "err", err,
				"hint", "the client must send a plain address (ASCII or normalised Unicode, no control characters, no trailing dot)")
			return s.refuse("MAIL", err)
		}
		from = c
	}
	pd, err := s.server.opts.Policy.Mail(policy.Input{
		Listener: s.ls.cfg.Name, ClientIP: s.clientIP, TLS: s.tls, AuthUser: s.authUser, Sender: from,
	})
	if err != nil {
		s.log.Warn("MAIL refused by policy", "from", from, "auth_user", s.authUser, "err", err,
			"hint", "add or adjust a rule for this client, network or sender")
		return s.refuse("MAIL", err)
	}
	s.from, s.pending = from, pd
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	c, err := canonicalPath(to, false)
	if err != nil {
		s.log.Warn("RCPT refused: unusable recipient address", "from", s.from, "rcpt", to, "err", err,
			"hint", "the client must send a plain address (ASCII or normalised Unicode, no control characters, no trailing dot)")
		return s.refuse("RCPT", err)
	}
	to = c
	if err := s.server.opts.Policy.Rcpt(s.pending, to, len(s.recipients)+1); err != nil {
		s.log.Warn("RCPT refused by policy", "from", s.from, "rcpt", to, "auth_user", s.authUser, "err", err,
			"hint", "the matching rule's recipients or max_recipients exclude this recipient; without rules, only the mailboxes' own domains are allowed (the built-in defaults: example.com)")
		return s.refuse("RCPT", err)
	}
	s.recipients = append(s.recipients, to)
	return nil
}

// Data reads the message, lets the policy decide on its header From, and
// hands it to the Deliverer. Every outcome goes through toSMTPError.
func (s *session) Data(r io.Reader) error {
	start := time.Now()
	env := &envelope.Envelope{
		ID:         envelope.NewID(),
		Listener:   s.ls.cfg.Name,
		ClientIP:   s.clientIP.String(),
		Helo:       s.helo,
		TLS:        s.tls,
		AuthUser:   s.authUser,
		From:       s.from,
		Recipients: append([]string(nil), s.recipients...),
		ReceivedAt: start,
	}
	log := s.log.With("id", env.ID)
	err := s.receive(r, env, log)
	reply := toSMTPError(err, env.ID)
	s.server.opts.Observer.MessageAnswered(s.ls.cfg.Name, reply.Code, enhancedString(reply), env.Size, time.Since(s.dataEnd(start)))
	attrs := []any{"from", env.From, "auth_user", env.AuthUser, "rcpts", len(env.Recipients), "size", env.Size,
		"mailbox", env.Mailbox.Address, "rule", env.Rule, "reply", reply.Code, "elapsed_ms", since(start)}
	if err != nil {
		log.Warn("message refused", append(attrs, "err", err, "hint", hintOf(err))...)
	} else {
		log.Info("message accepted", attrs...)
	}
	return reply
}

func (s *session) receive(r io.Reader, env *envelope.Envelope, log *slog.Logger) error {
	cr := newCRLFReader(cutShortGuard(r, s.conn))
	defer cr.release()
	hdr, rest, err := readHeader(cr)
	if err != nil {
		return err
	}
	defer releaseRest(rest)
	env.QualifyDomain = qualifyDomain(s.server.opts.SMTP.QualifyDomain, env.From)
	d, err := s.server.opts.Policy.Data(s.pending, headerFrom(hdr, env.QualifyDomain), env.Recipients)
	if err != nil {
		return err
	}
	env.Mailbox, env.Rule, env.FromName, env.ReplyTo, env.Format = d.Mailbox, d.Rule, d.FromName, usableReplyTo(d.ReplyTo), d.Format
	if env.ReplyTo == "" && d.ReplyTo != "" {
		log.Info("Reply-To left out: the original sender is not a usable address", "header_from", d.ReplyTo,
			"hint", "set smtp.qualify_domain, or have the client write a full address in From")
	}
	log.Debug("policy decision", "mailbox", d.Mailbox.Address, "rule", d.Rule, "from_handling", d.From, "format", d.Format)
	if !s.server.rates.allow(d.RuleIndex, d.MessagesPerMinute) {
		return errRateLimited{rule: d.Rule, perMinute: d.MessagesPerMinute}
	}
	msg := io.MultiReader(bytesReader(hdr), rest)
	s.eof = time.Time{}
	if err := s.server.opts.Deliverer.Deliver(s.server.ctx, env, &sizeTracker{r: msg, env: env, eof: &s.eof}); err != nil {
		return err
	}
	// A Deliverer that returned early must not leave the client's stream
	// unread; draining also surfaces a size-limit or timeout error. The
	// wrapper hides io.MultiReader's WriteTo, which would allocate a 32 KB
	// buffer per message only to find the stream already at its end;
	// io.Discard then drains with its own pooled buffer.
	_, err = io.Copy(io.Discard, struct{ io.Reader }{msg})
	return err
}

// dataEnd is when the client finished sending: the deliverer has read
// the whole stream by the time Data returns, so the receive phase ended at
// the last read. It is approximated by the time the tracker saw EOF.
func (s *session) dataEnd(start time.Time) time.Time {
	if !s.eof.IsZero() {
		return s.eof
	}
	return start
}

// sizeTracker records how many bytes the Deliverer read, for the log line.
type sizeTracker struct {
	r   io.Reader
	env *envelope.Envelope
	eof *time.Time
}

func (t *sizeTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.env.Size += int64(n)
	if err == io.EOF && t.eof.IsZero() {
		*t.eof = time.Now()
	}
	return n, err
}

func enhancedString(e *smtp.SMTPError) string {
	c := e.EnhancedCode
	return strconv.Itoa(c[0]) + "." + strconv.Itoa(c[1]) + "." + strconv.Itoa(c[2])
}

var (
	errHeaderTooLarge = errors.New("the header block exceeds 1 MiB")
)

// errRateLimited is a rule's messages-per-minute limit being exceeded.
type errRateLimited struct {
	rule      string
	perMinute int
}

func (e errRateLimited) Error() string {
	return "rate limit of " + itoa(e.perMinute) + " messages per minute exceeded for " + e.rule
}

func itoa(n int) string { return strconv.Itoa(n) }

// unwrapTracked finds the accessListener's connection under go-smtp's,
// which may be a *tls.Conn.
func unwrapTracked(c *smtp.Conn) (*trackedConn, bool) {
	nc := c.Conn()
	for i := 0; i < 3; i++ {
		switch v := nc.(type) {
		case *trackedConn:
			return v, true
		case interface{ NetConn() net.Conn }:
			nc = v.NetConn()
		default:
			return nil, false
		}
	}
	return nil, false
}
