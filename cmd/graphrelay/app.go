package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graphrelay/graphrelay/admin"
	"github.com/graphrelay/graphrelay/auth"
	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/graph/relay"
	"github.com/graphrelay/graphrelay/internal/tlsconf"
	"github.com/graphrelay/graphrelay/metrics"
	"github.com/graphrelay/graphrelay/policy"
	"github.com/graphrelay/graphrelay/queue"
	"github.com/graphrelay/graphrelay/smtpd"
)

// App is the daemon's wiring. serve runs it, and the end-to-end tests start
// the same App on 127.0.0.1:0, so the tests exercise what production runs.
type App struct {
	Config *config.Config
	Log    *slog.Logger
	// HTTPClient, when set, is used for Entra and Graph instead of one built
	// from the configuration; tests set it to trust their fake's CA.
	HTTPClient *http.Client
	// SpoolFS, when set, replaces the spool's filesystem. Only tests set
	// it: to inject faults (a full disk) that a real disk cannot produce
	// on demand, or to skip fsync where durability is not their subject.
	SpoolFS queue.FS

	smtp     *smtpd.Server
	tls      *tlsconf.Manager
	metrics  *metrics.Metrics
	admin    *admin.Server
	serveErr chan error
	// stopDispatch stops the delivery side from starting new attempts, at
	// the very start of a shutdown; stopDelivery waits for the attempts in
	// flight and closes the spool, after the SMTP side is closed.
	stopDispatch func()
	stopDelivery func(context.Context) error
	// life lives as long as the App, beyond the signal that stops it:
	// token refreshes of the requests still in flight during a shutdown
	// use it. Close cancels it last.
	life    context.Context
	endLife context.CancelFunc
	// backendReady tells /readyz whether the cluster backend can store a
	// message now; it is set once the backend is open, after the admin
	// endpoint started (see clusterReady).
	backendReady atomic.Pointer[func(context.Context) error]
	once         sync.Once
}

// lateDeliverer lets smtpd be built, and every listener bound, before the
// delivery side is opened, so that a start that fails to bind touches no
// spooled message. It is set once, before Serve.
type lateDeliverer struct{ smtpd.Deliverer }

// NewApp returns an App for cfg.
func NewApp(cfg *config.Config, log *slog.Logger) *App {
	return &App{Config: cfg, Log: log}
}

// Start builds every part, binds every listener, and only then opens the
// delivery side (the spool) and starts serving: a start that fails, for
// example on a port already taken, touches no spooled message. ctx's
// values are kept, but not its cancellation: the App lives until Close.
func (a *App) Start(ctx context.Context) (err error) {
	cfg := a.Config
	a.Log.Info("starting graphrelay", "version", versionString(), "config", cfg)
	a.life, a.endLife = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			a.endLife()
		}
	}()

	a.metrics = metrics.New()
	client, err := a.graphClient(a.life)
	if err != nil {
		return err
	}
	users, err := auth.Load(cfg.Users, cfg.UsersFile)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	pol, warnings, err := policy.New(cfg, users.Has)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	for _, w := range warnings {
		a.Log.Warn("policy: "+w, "hint", "reorder or narrow the rules; the first match wins")
	}
	rel := relay.New(client, cfg.Graph.SaveToSentItems, a.Log, relay.Options{LargeMessages: cfg.Delivery.LargeMessages,
		QuietSuccess: cfg.Delivery.Mode != config.ModeDirect})
	deliverer := &lateDeliverer{}

	hostname := cfg.SMTP.Hostname
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	opts := smtpd.Options{SMTP: cfg.SMTP, Auth: cfg.Auth, Hostname: hostname, Deliverer: deliverer, Policy: pol,
		Observer: a.metrics, Log: a.Log}
	if users.Len() > 0 {
		opts.Users, opts.Throttle = users, auth.NewThrottle(cfg.Auth, nil)
	}
	if needsTLS(cfg) {
		if a.tls, err = tlsconf.New(cfg.TLS, hostname, a.Log); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		opts.TLS = a.tls.ServerConfig()
		go a.tls.Watch(a.life, 30*time.Second)
	}
	a.smtp = smtpd.New(opts)
	if err := a.smtp.Listen(); err != nil {
		return err
	}
	if err := a.startAdmin(client); err != nil {
		a.smtp.Shutdown(context.Background())
		return err
	}
	if deliverer.Deliverer, err = a.newDeliverer(a.life, rel, rel); err != nil {
		if a.admin != nil {
			a.admin.Shutdown(context.Background())
		}
		a.smtp.Shutdown(context.Background())
		return err
	}
	a.serveErr = make(chan error, 1)
	go func() { a.serveErr <- a.smtp.Serve() }()
	return nil
}

// startAdmin serves /metrics, /healthz, /readyz and /graphz. Ready means
// mail can be accepted now: in queue mode, the spool is writable (Graph
// may be down; the spool is there to absorb that); in direct mode, where
// every message needs Graph at once, a token is cached or can be obtained.
// /graphz reports Graph's and Entra's health in both modes.
func (a *App) startAdmin(client *graph.Client) error {
	if a.Config.Admin.Listen == "" {
		return nil
	}
	token := admin.Check{Name: "graph token", Run: client.TokenReady}
	ready := []admin.Check{token}
	if a.Config.Delivery.Mode == config.ModeQueue && a.Config.Queue.Backend == config.BackendJetStream {
		ready = []admin.Check{{Name: "cluster store", Run: a.clusterReady}}
	} else if a.Config.Delivery.Mode == config.ModeQueue {
		dir := a.Config.Queue.Dir
		ready = []admin.Check{{Name: "spool writable", Run: func(context.Context) error { return probeWritable(dir) }}}
	}
	srv, err := admin.Listen(a.Config.Admin.Listen, a.metrics.Registry, ready, []admin.Check{token}, a.Log)
	if err != nil {
		return fmt.Errorf("admin listener %s: %w", a.Config.Admin.Listen, err)
	}
	a.admin = srv
	paths := "/metrics /healthz /readyz /graphz"
	if a.Config.Admin.Pprof {
		srv.EnablePprof()
		paths += " /debug/pprof/"
		if host, _, _ := net.SplitHostPort(srv.Addr()); !net.ParseIP(host).IsLoopback() {
			a.Log.Warn("admin.pprof serves profiles without authentication on a non-loopback address", "addr", srv.Addr(),
				"hint", "bind admin.listen to 127.0.0.1 or turn admin.pprof off once done")
		}
	}
	a.Log.Info("admin endpoint ready", "addr", srv.Addr(), "paths", paths)
	go func() {
		if err := srv.Serve(); err != nil {
			a.Log.Error("admin endpoint stopped", "err", err)
		}
	}()
	return nil
}

// probeWritable creates, syncs and removes a file in dir.
func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".ready-*")
	if err != nil {
		return fmt.Errorf("spool %s is not writable: %w", dir, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write([]byte("ok")); err != nil {
		return fmt.Errorf("spool %s: %w", dir, err)
	}
	return f.Sync()
}

func (a *App) graphClient(ctx context.Context) (*graph.Client, error) {
	cfg := a.Config
	if reason := cfg.DryRunReason(); reason != "" {
		a.Log.Warn("dry-run mode: mail is accepted but not sent; each Graph request is written to the outbox",
			"reason", reason, "outbox", cfg.OutboxDir)
		cloud, err := graph.ResolveCloud(cfg.Graph)
		if err != nil {
			return nil, err
		}
		hc := &http.Client{Transport: &graph.OutboxTransport{Dir: cfg.OutboxDir, Log: a.Log}}
		return graph.NewClient(cloud.GraphURL, hc, nil, a.Log), nil
	}
	hc := a.HTTPClient
	if hc == nil {
		var err error
		if hc, err = graph.NewHTTPClient(cfg.Graph.CAFile, cfg.Graph.Timeout.D()); err != nil {
			return nil, err
		}
	}
	creds, err := graph.LoadCredentialsObserved(ctx, cfg.Graph, hc, a.metrics.TokenFetched)
	if err != nil {
		return nil, fmt.Errorf("graph credential: %w", err)
	}
	attrs := []any{"cloud", creds.Cloud.Name, "token_url", creds.Cloud.TokenURL(cfg.Graph.TenantID),
		"graph_url", creds.Cloud.GraphURL, "credential", creds.Kind}
	if c := creds.Certificate; c != nil {
		a.metrics.SetCredentialExpiry(c.NotAfter())
		attrs = append(attrs, "cert_subject", c.Leaf.Subject.String(),
			"cert_sha1", fmt.Sprintf("%X", c.ThumbprintSHA1()), "cert_not_after", c.NotAfter().Format(time.DateOnly))
		if left := time.Until(c.NotAfter()); left < 30*24*time.Hour {
			a.Log.Warn("the app certificate expires soon; create a new one and upload it to the app registration",
				"not_after", c.NotAfter(), "days_left", int(left.Hours()/24))
		}
	}
	a.Log.Info("graph credential loaded", attrs...)
	return graph.NewClient(creds.Cloud.GraphURL, hc, creds.NewTokens, a.Log), nil
}

// Reload re-reads what can change without a restart: the TLS certificate.
// serve calls it on SIGHUP.
func (a *App) Reload() {
	if a.tls != nil {
		if err := a.tls.Reload(); err != nil {
			a.Log.Error("TLS certificate reload failed; still serving the previous certificate", "err", err,
				"hint", "check tls.cert_file and tls.key_file: both must be readable PEM and match each other")
		}
	}
}

func needsTLS(cfg *config.Config) bool {
	for _, l := range cfg.SMTP.Listeners {
		if l.TLS == config.TLSStartTLS || l.TLS == config.TLSImplicit {
			return true
		}
	}
	return false
}

// AdminAddr returns the admin endpoint's bound address, "" when disabled.
func (a *App) AdminAddr() string {
	if a.admin == nil {
		return ""
	}
	return a.admin.Addr()
}

// Metrics returns the App's collectors.
func (a *App) Metrics() *metrics.Metrics { return a.metrics }

// Addrs returns the SMTP listeners' bound addresses by name.
func (a *App) Addrs() map[string]string { return a.smtp.Addrs() }

// Close stops in this order, within smtp.shutdown_timeout: no new
// delivery attempt starts (at once); the listeners stop accepting and idle
// sessions are closed (at once); sessions in a transaction finish it;
// the attempts in flight finish (they ran all along); the spool is closed.
// What is still running at the deadline is cut off and resumes at the next
// start.
func (a *App) Close() error {
	var err error
	a.once.Do(func() {
		if a.smtp == nil {
			return
		}
		defer a.endLife()
		ctx, cancel := context.WithTimeout(context.Background(), a.Config.SMTP.ShutdownTimeout.D())
		defer cancel()
		if a.stopDispatch != nil {
			a.stopDispatch()
		}
		err = a.smtp.Shutdown(ctx)
		if serr := <-a.serveErr; serr != nil && err == nil {
			err = serr
		}
		if a.admin != nil {
			a.admin.Shutdown(ctx)
		}
		if a.stopDelivery != nil {
			if derr := a.stopDelivery(ctx); derr != nil && err == nil {
				err = derr
			}
		}
	})
	return err
}
