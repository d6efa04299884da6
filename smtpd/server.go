// Package smtpd adapts go-smtp to graphrelay: it runs the SMTP listeners,
// asks the policy which mailbox a message may leave as, hands the message to
// a Deliverer, and turns the outcome into an SMTP reply. It does not know
// what Graph is.
package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/policy"
)

// Deliverer takes responsibility for an accepted message. It must consume
// msg. A nil error means the message is delivered (direct mode) or safely
// queued; errors are classified by the methods they implement (see reply.go).
type Deliverer interface {
	Deliver(ctx context.Context, env *envelope.Envelope, msg io.Reader) error
}

// Decider chooses the mailbox a message is sent as.
type Decider interface {
	Decide(envelopeFrom string, headerFrom []string) (policy.Decision, error)
}

// Server runs one go-smtp server per configured listener.
type Server struct {
	cfg       config.SMTP
	deliverer Deliverer
	decider   Decider
	log       *slog.Logger
	hostname  string

	// ctx bounds in-flight deliveries; it is cancelled only after the
	// shutdown deadline, so that a message being relayed during a graceful
	// stop still gets its answer.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	servers []*listenerServer
}

type listenerServer struct {
	name string
	srv  *smtp.Server
	ln   net.Listener
}

// New prepares a server. Listen opens the sockets.
func New(cfg config.SMTP, hostname string, d Deliverer, p Decider, log *slog.Logger) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, deliverer: d, decider: p, log: log, hostname: hostname, ctx: ctx, cancel: cancel}
}

// Listen opens every configured listener. It fails without leaving any
// socket open if one of them cannot be bound.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, lc := range s.cfg.Listeners {
		ln, err := net.Listen("tcp", lc.Address)
		if err != nil {
			for _, ls := range s.servers {
				ls.ln.Close()
			}
			s.servers = nil
			return fmt.Errorf("listener %s: %w", lc.Name, err)
		}
		s.servers = append(s.servers, &listenerServer{name: lc.Name, srv: s.newSMTPServer(lc), ln: ln})
	}
	return nil
}

// Addrs returns the bound address of each listener by name, which tests
// need when they listen on port 0.
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, ls := range s.servers {
		out[ls.name] = ls.ln.Addr().String()
	}
	return out
}

func (s *Server) newSMTPServer(lc config.Listener) *smtp.Server {
	srv := smtp.NewServer(&backend{server: s, listener: lc.Name})
	srv.Domain = s.hostname
	srv.MaxMessageBytes = s.cfg.MaxMessageBytes
	srv.MaxRecipients = s.cfg.MaxRecipients
	srv.ReadTimeout = s.cfg.ReadTimeout.D()
	srv.WriteTimeout = s.cfg.WriteTimeout.D()
	srv.EnableSMTPUTF8 = true
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
		s.log.Info("smtp listener ready", "listener", ls.name, "addr", ls.ln.Addr().String())
		go func() { errc <- ls.srv.Serve(ls.ln) }()
	}
	var first error
	for range servers {
		if err := <-errc; err != nil && !errors.Is(err, smtp.ErrServerClosed) && first == nil {
			first = err
		}
	}
	return first
}

// Shutdown stops accepting, lets open sessions finish until ctx expires,
// then cancels the deliveries still running and closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers := append([]*listenerServer(nil), s.servers...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, ls := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ls.srv.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				s.log.Warn("smtp sessions still open at the shutdown deadline; closing them", "listener", ls.name, "err", err)
				ls.srv.Close()
			}
		}()
	}
	wg.Wait()
	s.cancel()
	return nil
}

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) {
	l.log.Warn("smtp protocol error", "detail", fmt.Sprintf(format, v...))
}

func (l slogLogger) Println(v ...any) {
	l.log.Warn("smtp protocol error", "detail", fmt.Sprint(v...))
}

// since returns elapsed milliseconds for log lines.
func since(t time.Time) float64 {
	return float64(time.Since(t).Microseconds()) / 1000
}
