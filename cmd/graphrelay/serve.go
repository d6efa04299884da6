package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/graphrelay/graphrelay/config"
)

func serveCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("GRAPHRELAY_CONFIG"), "YAML configuration `file` (default: built-in dry-run defaults)")
	dryRun := fs.Bool("dry-run", false, "write Graph requests to the outbox instead of sending them")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	env := os.Environ()
	if *dryRun {
		env = append(env, config.EnvPrefix+"DRY_RUN=true")
	}
	cfg, err := config.Load(*cfgPath, env)
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay: %v\n", err)
		return 2
	}
	level := new(slog.LevelVar)
	log := newLogger(cfg.Log, level, stderr)
	if w := config.InlineSecretExposure(*cfgPath); w != "" {
		log.Warn(w)
	}
	app := NewApp(cfg, log)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := app.Start(ctx); err != nil {
		log.Error("startup failed", "err", err)
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for ctx.Err() == nil {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading the log level and the TLS certificate")
			reloadLogLevel(*cfgPath, level, log)
			app.Reload()
		case <-ctx.Done():
		}
	}
	stop() // a second signal now kills the process the default way
	log.Info("shutting down", "deadline", cfg.SMTP.ShutdownTimeout.D().String())
	if err := app.Close(); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// reloadLogLevel re-reads log.level, the one setting that changes without a
// restart; the rest of a changed file is reported but not applied.
func reloadLogLevel(path string, level *slog.LevelVar, log *slog.Logger) {
	cfg, err := config.Load(path, os.Environ())
	if err != nil {
		log.Error("SIGHUP: the configuration does not load; keeping the running settings", "err", err)
		return
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.Log.Level)); err == nil && l != level.Level() {
		log.Info("log level changed", "from", level.Level().String(), "to", l.String())
		level.Set(l)
	}
}

func newLogger(c config.Log, level *slog.LevelVar, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level))
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
