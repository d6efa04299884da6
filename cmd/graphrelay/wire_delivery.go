package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/queue"
	"github.com/graphrelay/graphrelay/smtpd"
)

// newDeliverer builds the delivery side for delivery.mode and records how
// to stop it in a.stopDelivery.
func (a *App) newDeliverer(ctx context.Context, sender queue.Sender, admit queue.Admitter) (smtpd.Deliverer, error) {
	cfg := a.Config
	if cfg.Delivery.Mode == config.ModeDirect {
		stage := cfg.DirectStagingDir()
		if err := os.MkdirAll(stage, 0o700); err != nil {
			return nil, fmt.Errorf("direct mode stages messages in %s: %w (make queue.dir writable for graphrelay)", stage, err)
		}
		a.Log.Info("delivery mode direct: each message is relayed before the SMTP reply; nothing is queued", "staging", stage)
		qo := queueOptions(cfg)
		return queue.NewDirect(sender, queue.DirectOptions{TmpDir: stage, Mailboxes: qo.Mailboxes, DefaultConcurrency: qo.DefaultConcurrency,
			RetryMax: qo.RetryMax, Admitter: admit, Observer: a.metrics}), nil
	}
	if cfg.Queue.Backend == config.BackendJetStream {
		return a.newClusterDeliverer(ctx, sender)
	}
	opts := queueOptions(cfg)
	opts.Log = a.Log
	opts.FS = a.SpoolFS
	opts.Observer = a.metrics
	opts.Admitter = admit
	q, err := queue.Open(opts, sender)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q.Start()
	a.stopDispatch, a.stopDelivery = q.StopDispatch, q.Close
	a.Log.Info("delivery mode queue: messages are spooled durably before the 250 reply",
		"dir", opts.Dir, "workers", opts.Workers, "notice_to", strings.Join(opts.NoticeTo, ","), "notice_to_mailbox", opts.NoticeToMailbox,
		"max_messages", opts.MaxMessages, "max_bytes", opts.MaxBytes)
	return q, nil
}

// queueOptions translates the configuration for the queue package.
func queueOptions(cfg *config.Config) queue.Options {
	qc := cfg.Queue
	opts := queue.Options{
		Dir:                qc.Dir,
		MaxBytes:           qc.MaxBytes,
		MaxMessages:        qc.MaxMessages,
		Workers:            qc.Workers,
		RetryInitial:       qc.RetryInitial.D(),
		RetryMax:           qc.RetryMax.D(),
		MaxAge:             qc.MaxAge.D(),
		DefaultConcurrency: config.DefaultMailboxConcurrency,
		DelayNoticeAfter:   qc.DelayNoticeAfter.D(),
	}
	for _, m := range cfg.Mailboxes {
		opts.Mailboxes = append(opts.Mailboxes, queue.MailboxLimits{
			Address: m.Address, MaxConcurrency: m.MaxConcurrency, MessagesPerMinute: m.MessagesPerMinute})
	}
	for _, to := range strings.Split(qc.NoticeTo, ",") {
		switch to = strings.TrimSpace(to); {
		case strings.EqualFold(to, config.NoticeToMailbox):
			opts.NoticeToMailbox = true
		case to != "" && !strings.EqualFold(to, config.NoticeToNone):
			opts.NoticeTo = append(opts.NoticeTo, to)
		}
	}
	if len(opts.NoticeTo) > 0 || opts.NoticeToMailbox {
		opts.NoticeMailbox = noticeMailbox(cfg)
	}
	if opts.Workers == 0 {
		opts.Workers = queue.DefaultWorkers(opts.Mailboxes, opts.DefaultConcurrency)
	}
	return opts
}

// noticeMailbox is the mailbox notices are sent as: queue.notice_mailbox,
// else default_mailbox, else the first mailbox, with its object id when
// configured.
func noticeMailbox(cfg *config.Config) envelope.Mailbox {
	addr := cfg.Queue.NoticeMailbox
	if addr == "" {
		addr = cfg.DefaultMailbox
	}
	if addr == "" && len(cfg.Mailboxes) > 0 {
		addr = cfg.Mailboxes[0].Address
	}
	for _, m := range cfg.Mailboxes {
		if strings.EqualFold(m.Address, addr) {
			return envelope.Mailbox{Address: m.Address, ID: m.ID}
		}
	}
	return envelope.Mailbox{Address: addr}
}
