package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/graphrelay/graphrelay/cluster"
	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/queue"
)

// migrateCmd runs "graphrelay queue migrate --dir SPOOL --config FILE": it
// moves a host's local spool (waiting mail and dead letters, with their
// history) into the NATS JetStream cluster that FILE configures. The
// host's daemon must be stopped; each message leaves the spool only once
// the cluster has stored it, so an interrupted run is simply repeated.
func migrateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("queue migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("GRAPHRELAY_CONFIG"), "configuration `file` with queue.backend: jetstream")
	dir := fs.String("dir", "", "the host's spool `directory` (its queue.dir) to move into the cluster")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: graphrelay queue migrate --dir SPOOL --config CLUSTER.yaml")
		return 2
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay queue migrate: %v\n", err)
		return 2
	}
	if cfg.Queue.Backend != config.BackendJetStream {
		fmt.Fprintln(stderr, "graphrelay queue migrate: the configuration must have queue.backend: jetstream (the cluster to move into)")
		return 2
	}
	admin, err := cluster.OpenAdmin(clusterOptions(cfg))
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay queue migrate: %v\n", err)
		return 1
	}
	defer admin.Close()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n, err := queue.Export(*dir, log, admin.Import)
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay queue migrate: moved %d message(s), then: %v\n", n, err)
		return 1
	}
	fmt.Fprintf(stdout, "moved %d message(s) from %s into the cluster\n", n, *dir)
	return 0
}
