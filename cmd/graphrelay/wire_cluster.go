package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/graphrelay/graphrelay/cluster"
	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/queue"
	"github.com/graphrelay/graphrelay/smtpd"
)

// newClusterDeliverer builds the delivery side for queue.backend
// jetstream and records how to stop it and how to tell readiness.
func (a *App) newClusterDeliverer(ctx context.Context, sender queue.Sender) (smtpd.Deliverer, error) {
	opts := clusterOptions(a.Config)
	opts.Log = a.Log
	opts.Observer = a.metrics
	c, err := cluster.Open(ctx, opts, sender)
	if err != nil {
		return nil, fmt.Errorf("queue backend jetstream: %w", err)
	}
	if err := c.Start(); err != nil {
		c.Close(ctx)
		return nil, fmt.Errorf("queue backend jetstream: %w", err)
	}
	a.stopDispatch, a.stopDelivery = c.StopDispatch, c.Close
	ready := c.Ready
	a.backendReady.Store(&ready)
	a.Log.Info("delivery mode queue on the NATS JetStream cluster: messages are stored with the configured replication before the 250 reply",
		"urls", strings.Join(opts.URLs, ","), "replicas", opts.Replicas, "lease", opts.Lease, "relay", opts.Name)
	return c, nil
}

// clusterReady is /readyz's check in cluster mode: the backend is open
// and can store a message with the configured replication now.
func (a *App) clusterReady(ctx context.Context) error {
	ready := a.backendReady.Load()
	if ready == nil {
		return errors.New("the NATS JetStream queue is not open yet")
	}
	return (*ready)(ctx)
}

// clusterOptions translates the configuration for the cluster package;
// the delivery settings are the local queue's.
func clusterOptions(cfg *config.Config) cluster.Options {
	q := queueOptions(cfg)
	j := cfg.Queue.JetStream
	name, _ := os.Hostname()
	return cluster.Options{
		URLs: j.URLs, CredsFile: j.CredsFile, NKeyFile: j.NKeyFile,
		CAFile: j.CAFile, CertFile: j.CertFile, KeyFile: j.KeyFile,
		Replicas: j.Replicas, Lease: j.Lease.D(), Name: name, StageDir: cfg.Queue.Dir,
		Workers: q.Workers, RetryInitial: q.RetryInitial, RetryMax: q.RetryMax, MaxAge: q.MaxAge,
		Mailboxes: q.Mailboxes, DefaultConcurrency: q.DefaultConcurrency,
		NoticeTo: q.NoticeTo, NoticeToMailbox: q.NoticeToMailbox, NoticeMailbox: q.NoticeMailbox, DelayNoticeAfter: q.DelayNoticeAfter,
	}
}

// queueAdmin is what "graphrelay queue" needs from a backend.
type queueAdmin interface {
	List() ([]*queue.Record, []error)
	Failed() ([]*queue.Record, []error)
	Damaged() ([]queue.DamagedEntry, error)
	Show(id string) (*queue.Message, error)
	Do(req queue.Request) (queue.Response, error)
}

// openQueueAdmin opens the local spool, or the cluster when cfg names the
// jetstream backend.
func openQueueAdmin(cfg *config.Config, spoolDir string, log *slog.Logger) (queueAdmin, func(), error) {
	if cfg != nil && cfg.Queue.Backend == config.BackendJetStream {
		a, err := cluster.OpenAdmin(clusterOptions(cfg))
		if err != nil {
			return nil, nil, err
		}
		return a, a.Close, nil
	}
	a, err := queue.OpenAdmin(spoolDir)
	if err != nil {
		return nil, nil, err
	}
	a.Log = log
	return a, func() {}, nil
}
