package cluster

import (
	"log/slog"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/queue"
)

// Options configure the cluster backend.
type Options struct {
	// URLs are the NATS servers (queue.jetstream.urls).
	URLs []string
	// CredsFile is a NATS credentials file; NKeyFile an nkey seed file.
	CredsFile, NKeyFile string
	// CAFile, CertFile and KeyFile configure TLS to NATS; CAFile alone
	// verifies the servers, the pair is a client certificate.
	CAFile, CertFile, KeyFile string
	// Replicas is the streams' replication factor (default 3).
	Replicas int
	// Lease bounds how long a dead relay holds a message and its share of
	// a mailbox's budget (default 30s).
	Lease time.Duration
	// StoreTimeout bounds how long storing one message may take before
	// the client gets 451 (default 30s).
	StoreTimeout time.Duration
	// StageDir is where message bodies are staged while they are sent
	// (queue.dir); "" is the system's temporary directory.
	StageDir string
	// Name identifies this relay in the NATS connection and the logs.
	Name string

	// Workers bounds this relay's concurrent Graph requests (default
	// queue.DefaultWorkers: the sum of the mailboxes' max_concurrency, at
	// least 16).
	Workers int
	// RetryInitial, RetryMax and MaxAge shape retries (defaults 30s, 15m,
	// 24h), as in the local queue.
	RetryInitial, RetryMax, MaxAge time.Duration
	// Mailboxes are the per-mailbox limits, shared by all relays.
	Mailboxes          []queue.MailboxLimits
	DefaultConcurrency int
	// NoticeTo receives notices about dead letters, sent as NoticeMailbox,
	// and, after DelayNoticeAfter (0: never), one about a message still
	// waiting.
	NoticeTo []string
	// NoticeToMailbox adds the mailbox the message was to be sent as to
	// the recipients (queue.notice_to: mailbox, the default).
	NoticeToMailbox  bool
	NoticeMailbox    envelope.Mailbox
	DelayNoticeAfter time.Duration
	// PollInterval is how often a relay that has a message rechecks a
	// mailbox's leases besides the changes it watches (default 250ms).
	PollInterval time.Duration

	Log      *slog.Logger
	Observer queue.Observer
}

// fate is the settings with which the relay settles outcomes: the local
// queue's, so that both backends retry, expire and notify alike.
func (o Options) fate() *queue.Fate {
	return &queue.Fate{RetryInitial: o.RetryInitial, RetryMax: o.RetryMax, MaxAge: o.MaxAge,
		NoticeTo: o.NoticeTo, NoticeToMailbox: o.NoticeToMailbox, NoticeMailbox: o.NoticeMailbox.Address,
		DelayNoticeAfter: o.DelayNoticeAfter, Observer: o.Observer, Log: o.Log}
}

func (o Options) withDefaults() Options {
	if o.Replicas <= 0 {
		o.Replicas = 3
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 30 * time.Second
	}
	if o.RetryInitial <= 0 {
		o.RetryInitial = 30 * time.Second
	}
	if o.RetryMax < o.RetryInitial {
		o.RetryMax = max(15*time.Minute, o.RetryInitial)
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.DefaultConcurrency <= 0 {
		o.DefaultConcurrency = 4
	}
	if o.Workers <= 0 {
		// The same formula as the local queue's: the mailboxes' budgets.
		o.Workers = queue.DefaultWorkers(o.Mailboxes, o.DefaultConcurrency)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	return o
}

type nopObserver struct{}

func (nopObserver) Delivered(string, time.Duration)             {}
func (nopObserver) DeliveryFailed(string, string, string, bool) {}
func (nopObserver) QueueStats(string, int, time.Duration)       {}
func (nopObserver) Damaged(int)                                 {}
func (nopObserver) DeadLettered(string, string)                 {}
func (nopObserver) Throttled(string, bool, time.Duration)       {}
