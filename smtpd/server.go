// Package smtpd adapts go-smtp to graphrelay: it runs the SMTP listeners,
// admits clients by network and connection limits, authenticates them,
// asks the policy at MAIL, RCPT and the end of DATA which mailbox a message
// may leave as, hands the message to a Deliverer, and turns every outcome
// into an SMTP reply. It does not know what Graph is.
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/policy"
)

// Deliverer takes responsibility for an accepted message. It must consume
// msg. A nil error means the message is delivered (direct mode) or safely
// queued; errors are classified by the methods they implement (reply.go).
type Deliverer interface {
	Deliver(ctx context.Context, env *envelope.Envelope, msg io.Reader) error
}

// Policy decides who may send as which mailbox, to whom.
type Policy interface {
	Mail(in policy.Input) (*policy.Pending, error)
	Rcpt(p *policy.Pending, rcpt string, n int) error
	Data(p *policy.Pending, headerFrom []policy.Address, recipients []string) (policy.Decision, error)
}

// Authenticator checks SMTP AUTH credentials.
type Authenticator interface {
	Verify(user, password string) bool
	// Canonical returns the user name as configured, so rules written for
	// "scanner" match a device that logs in as "SCANNER".
	Canonical(name string) (string, bool)
}

// Throttle tracks AUTH failures per client IP.
type Throttle interface {
	Blocked(ip string) (bool, time.Duration)
	// Begin reserves one password check for ip, waiting while the checks
	// in flight could use up the client's remaining failures. done reports
	// whether the password was checked and was right, and returns true
	// when that failure triggered the lockout; a nil done means refused:
	// locked out for left, or ctx ended.
	Begin(ctx context.Context, ip string) (done func(checked, ok bool) bool, left time.Duration)
	// Failure counts a failure that needed no password check.
	Failure(ip string) bool
}

// Options are the parts a Server is built from.
type Options struct {
	SMTP     config.SMTP
	Auth     config.Auth
	Hostname string
	// TLS serves STARTTLS and implicit-TLS listeners; nil when no listener
	// uses TLS.
	TLS       *tls.Config
	Deliverer Deliverer
	Policy    Policy
	// Users and Throttle are nil when no SMTP users are configured.
	Users    Authenticator
	Throttle Throttle
	// Observer receives events for metrics; nil means none.
	Observer Observer
	Log      *slog.Logger
}

// Server runs one go-smtp server per configured listener.
type Server struct {
	opts  Options
	log   *slog.Logger
	rates *rateLimiter
	// verifying bounds concurrent password checks: each costs a bcrypt
	// hash, and the per-IP lockout alone cannot stop many IPs at once from
	// using up the CPU.
	verifying chan struct{}

	// ctx bounds in-flight deliveries; it is cancelled only after the
	// shutdown deadline, so that a message being relayed during a graceful
	// stop still gets its answer.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	servers []*listenerServer
	// closing is set by Shutdown. go-smtp's Shutdown only closes the
	// listeners its Serve has registered, so a Serve goroutine that starts
	// late would accept forever; Shutdown closes our listeners itself, and
	// Serve then treats the resulting error as a clean stop.
	closing atomic.Bool
}

type listenerServer struct {
	cfg  config.Listener
	srv  *smtp.Server
	ln   *accessListener
	nets []netip.Prefix
}

// New prepares a server. Listen opens the sockets.
func New(o Options) *Server {
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{opts: o, log: o.Log, ctx: ctx, cancel: cancel, rates: newRateLimiter(time.Now),
		verifying: make(chan struct{}, max(2, runtime.NumCPU()))}
}

// Listen opens every configured listener. It fails without leaving any
// socket open if one of them cannot be bound.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, lc := range s.opts.SMTP.Listeners {
		ls, err := s.listen(lc)
		if err != nil {
			for _, done := range s.servers {
				done.ln.Close()
			}
			s.servers = nil
			return fmt.Errorf("listener %s (%s): %w", lc.Name, lc.Address, err)
		}
		s.servers = append(s.servers, ls)
	}
	return nil
}

func (s *Server) listen(lc config.Listener) (*listenerServer, error) {
	ls := &listenerServer{cfg: lc}
	for _, n := range lc.Networks {
		p, err := config.ParseNetwork(n)
		if err != nil {
			return nil, err
		}
		ls.nets = append(ls.nets, p)
	}
	if lc.TLS != config.TLSNone && s.opts.TLS == nil {
		return nil, errors.New("the listener uses TLS but no certificate is configured")
	}
	lcfg := listenConfig()
	raw, err := lcfg.Listen(context.Background(), "tcp", lc.Address)
	if err != nil {
		return nil, err
	}
	ls.ln = newAccessListener(raw, lc, ls.nets, s.opts.Throttle, s.log.With("listener", lc.Name))
	ls.ln.obs = s.opts.Observer
	ls.srv = s.newSMTPServer(ls)
	return ls, nil
}

// Addrs returns the bound address of each listener by name, which tests
// need when they listen on port 0.
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, ls := range s.servers {
		out[ls.cfg.Name] = ls.ln.Addr().String()
	}
	return out
}

func (s *Server) newSMTPServer(ls *listenerServer) *smtp.Server {
	lc := ls.cfg
	srv := smtp.NewServer(&backend{server: s, ls: ls})
	srv.Domain = s.opts.Hostname
	srv.MaxMessageBytes = s.opts.SMTP.MaxMessageBytes
	srv.MaxRecipients = s.opts.SMTP.MaxRecipients
	srv.MaxLineLength = s.opts.SMTP.MaxLineLength
	srv.ReadTimeout = s.opts.SMTP.ReadTimeout.D()
	srv.WriteTimeout = s.opts.SMTP.WriteTimeout.D()
	srv.EnableSMTPUTF8 = true
	if lc.TLS == config.TLSStartTLS {
		srv.TLSConfig = s.opts.TLS
	}
	// go-smtp offers AUTH only over TLS unless this is set. Loopback is not
	// sniffable, and old devices without TLS need an explicit, logged opt-in.
	srv.AllowInsecureAuth = lc.AllowInsecureAuth || isLoopbackAddr(lc.Address)
	if lc.AllowInsecureAuth && !isLoopbackAddr(lc.Address) && lc.Auth != config.AuthNone {
		s.log.Warn("AUTH is offered without TLS on this listener: passwords cross the network in clear text; use it only for devices that cannot do TLS",
			"listener", lc.Name)
	}
	// go-smtp's Debug writer would log AUTH exchanges verbatim, so it is
	// never wired; protocol errors go to slog instead.
	srv.ErrorLog = slogLogger{s.log.With("listener", lc.Name)}
	return srv
}

// Serve accepts connections on every listener until Shutdown.
func (s *Server) Serve() error {
	s.mu.Lock()
	servers := append([]*listenerServer(nil), s.servers...)
	s.mu.Unlock()
	errc := make(chan error, len(servers))
	for _, ls := range servers {
		s.log.Info("smtp listener ready", "listener", ls.cfg.Name, "addr", ls.ln.Addr().String(),
			"tls", ls.cfg.TLS, "auth", ls.cfg.Auth, "networks", ls.cfg.Networks)
		go func() {
			if ls.cfg.TLS == config.TLSImplicit {
				errc <- ls.srv.Serve(tls.NewListener(ls.ln, s.opts.TLS))
				return
			}
			errc <- ls.srv.Serve(ls.ln)
		}()
	}
	var first error
	for range servers {
		if err := <-errc; err != nil && !errors.Is(err, smtp.ErrServerClosed) && !s.closing.Load() && first == nil {
			first = err
		}
	}
	return first
}

// Shutdown stops accepting, closes idle sessions at once, lets sessions
// in a transaction finish it until ctx expires, then cancels the
// deliveries still running and closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	servers := append([]*listenerServer(nil), s.servers...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, ls := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls.ln.Close()
			ls.ln.closeIdle()
			if err := ls.srv.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				s.log.Warn("smtp sessions still open at the shutdown deadline; closing them", "listener", ls.cfg.Name, "err", err)
				ls.srv.Close()
				ls.ln.closeAll()
			}
			ls.ln.Close()
		}()
	}
	wg.Wait()
	s.cancel()
	return nil
}

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) {
	l.report(fmt.Sprintf(format, v...))
}

func (l slogLogger) Println(v ...any) {
	l.report(fmt.Sprint(v...))
}

// clientGoneErrors are how go-smtp reports a client that closed or reset
// the connection. A TCP health probe (a load balancer's, Kubernetes's
// tcpSocket) does exactly that every few seconds; it is not a protocol
// error worth a warning.
var clientGoneErrors = []string{"connection reset by peer", "broken pipe", ": EOF", "use of closed network connection"}

func (l slogLogger) report(detail string) {
	for _, e := range clientGoneErrors {
		if strings.Contains(detail, e) {
			l.log.Debug("smtp client closed the connection", "detail", detail)
			return
		}
	}
	l.log.Warn("smtp protocol error", "detail", detail)
}

// since returns elapsed milliseconds for log lines.
func since(t time.Time) float64 {
	return float64(time.Since(t).Microseconds()) / 1000
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
