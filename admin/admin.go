// Package admin serves graphrelay's operations endpoints over HTTP:
// Prometheus metrics, liveness and readiness. It listens on loopback by
// default because it needs no authentication to read.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition; a nil error means ready.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Server is the admin HTTP endpoint.
type Server struct {
	srv    *http.Server
	mux    *http.ServeMux
	ln     net.Listener
	checks []Check
	log    *slog.Logger

	// Readiness is cached briefly so that a probe every second does not
	// turn into a token request or a disk write every second.
	mu       sync.Mutex
	cachedAt time.Time
	cached   []result
}

type result struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

const readyCacheFor = 5 * time.Second

// pprofWriteTimeout bounds a response with admin.pprof on: profiles of up
// to a few minutes.
const pprofWriteTimeout = 5 * time.Minute

// Listen binds addr and prepares the handlers.
func Listen(addr string, reg *prometheus.Registry, checks []Check, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, checks: checks, log: log}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	s.mux = mux
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	return s, nil
}

// EnablePprof serves Go's profiler under /debug/pprof/ (admin.pprof), so
// that an admin can profile a live relay the standard way. Call it before
// Serve. It is never on the SMTP listeners. A CPU profile or trace lasts
// up to its ?seconds= (30 by default), longer than the endpoint's usual
// write timeout, which is therefore raised to pprofWriteTimeout.
func (s *Server) EnablePprof() {
	s.srv.WriteTimeout = pprofWriteTimeout
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve runs until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	results := s.evaluate(r.Context())
	status := http.StatusOK
	for _, res := range results {
		if !res.OK {
			status = http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"ready": status == http.StatusOK, "checks": results})
}

func (s *Server) evaluate(ctx context.Context) []result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached != nil && time.Since(s.cachedAt) < readyCacheFor {
		return s.cached
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out := make([]result, 0, len(s.checks))
	for _, c := range s.checks {
		res := result{Name: c.Name, OK: true}
		if err := c.Run(ctx); err != nil {
			res.OK, res.Error = false, err.Error()
			s.log.Warn("not ready", "check", c.Name, "err", err)
		}
		out = append(out, res)
	}
	s.cached, s.cachedAt = out, time.Now()
	return out
}
