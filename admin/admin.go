// Package admin serves graphrelay's operations endpoints over HTTP:
// Prometheus metrics (/metrics), liveness (/healthz), readiness (/readyz:
// whether mail can be accepted now) and the health of the upstream
// Microsoft Graph and Entra ID (/graphz), kept apart from readiness
// because in queue mode the spool exists to accept mail while they are
// down. It listens on loopback by default because it needs no
// authentication to read.
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
	srv   *http.Server
	mux   *http.ServeMux
	ln    net.Listener
	ready *probeSet
	graph *probeSet
	log   *slog.Logger
}

// probeSet is a list of checks whose results are cached briefly, so that
// a probe every second does not turn into a token request or a disk write
// every second.
type probeSet struct {
	checks   []Check
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

// Listen binds addr and prepares the handlers: ready decides /readyz,
// graph is reported at /graphz (both answer 503 when a check fails).
func Listen(addr string, reg *prometheus.Registry, ready, graph []Check, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, ready: &probeSet{checks: ready}, graph: &probeSet{checks: graph}, log: log}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { s.answer(w, r, s.ready, "ready") })
	mux.HandleFunc("GET /graphz", func(w http.ResponseWriter, r *http.Request) { s.answer(w, r, s.graph, "healthy") })
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

// answer runs a probe set and reports it as JSON under key.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, set *probeSet, key string) {
	results := s.evaluate(r.Context(), set)
	status := http.StatusOK
	for _, res := range results {
		if !res.OK {
			status = http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{key: status == http.StatusOK, "checks": results})
}

// evaluate runs the checks, each bounded by the probe's context and at
// most probeTimeout; a check must return when its context ends.
func (s *Server) evaluate(ctx context.Context, set *probeSet) []result {
	set.mu.Lock()
	defer set.mu.Unlock()
	if set.cached != nil && time.Since(set.cachedAt) < readyCacheFor {
		return set.cached
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out := make([]result, 0, len(set.checks))
	for _, c := range set.checks {
		res := result{Name: c.Name, OK: true}
		if err := c.Run(ctx); err != nil {
			res.OK, res.Error = false, err.Error()
			s.log.Warn("check failed", "check", c.Name, "err", err)
		}
		out = append(out, res)
	}
	if ctx.Err() == nil {
		set.cached, set.cachedAt = out, time.Now()
	}
	return out
}

// probeTimeout bounds one probe, below the usual 10-second timeout of a
// load balancer's or Kubernetes' probe.
const probeTimeout = 5 * time.Second
