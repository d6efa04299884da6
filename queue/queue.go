package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
)

// Options configure a Queue. Zero durations and counts take the defaults
// noted on each field, which are config/default.yaml's.
type Options struct {
	// Dir is the spool directory (queue.dir).
	Dir string
	// MaxBytes and MaxMessages are the spool quota for messages waiting in
	// queue/; 0 is unlimited. Dead letters in failed/ do not count.
	MaxBytes    int64
	MaxMessages int
	// Workers bounds concurrent delivery attempts over all mailboxes,
	// those sending and those prepared ahead (default DefaultWorkers).
	Workers int
	// RetryInitial, RetryMax and MaxAge shape retries (defaults 30s, 15m,
	// 24h).
	RetryInitial, RetryMax, MaxAge time.Duration
	// Mailboxes are the per-mailbox limits. A message for a mailbox not
	// listed gets DefaultConcurrency and no pacing.
	Mailboxes []MailboxLimits
	// DefaultConcurrency is Graph's per-app, per-mailbox limit (default 4).
	DefaultConcurrency int
	// NoticeTo receives notices about dead letters (and delays, see
	// DelayNoticeAfter), and so does the mailbox the message was to be
	// sent as when NoticeToMailbox is set; with neither, no notice is
	// sent. NoticeMailbox is the mailbox notices are sent as.
	NoticeTo         []string
	NoticeToMailbox  bool
	NoticeMailbox    envelope.Mailbox
	DelayNoticeAfter time.Duration
	// ControlInterval is how often the daemon looks for admin requests
	// (default 200ms).
	ControlInterval time.Duration
	// LockWait is how long Open waits for an admin command that holds the
	// spool lock (default 10s).
	LockWait time.Duration
	// Admitter is the preflight before 250 (see Admitter); nil admits
	// every message.
	Admitter Admitter
	// FS is where the spool writes; nil is the operating system.
	FS  FS
	Log *slog.Logger
	// Observer receives delivery events and queue statistics for metrics;
	// nil discards them.
	Observer Observer
}

// fate is the settings with which the queue settles outcomes.
func (o Options) fate() *Fate {
	return &Fate{RetryInitial: o.RetryInitial, RetryMax: o.RetryMax, MaxAge: o.MaxAge,
		NoticeTo: o.NoticeTo, NoticeToMailbox: o.NoticeToMailbox, NoticeMailbox: o.NoticeMailbox.Address,
		DelayNoticeAfter: o.DelayNoticeAfter, Observer: o.Observer, Log: o.Log}
}

func (o Options) withDefaults() Options {
	if o.DefaultConcurrency <= 0 {
		o.DefaultConcurrency = 4
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers(o.Mailboxes, o.DefaultConcurrency)
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
	if o.ControlInterval <= 0 {
		o.ControlInterval = 200 * time.Millisecond
	}
	if o.LockWait <= 0 {
		o.LockWait = 10 * time.Second
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	return o
}

// DefaultWorkers is queue.workers when it is 0: the sum of the configured
// mailboxes' request limits (max_concurrency, def when unset), so that
// every mailbox can use Graph's whole budget at once, and at least 16, for
// mailboxes reached without being listed and for notices.
func DefaultWorkers(mailboxes []MailboxLimits, def int) int {
	n := 0
	for _, m := range mailboxes {
		if m.MaxConcurrency > 0 {
			n += m.MaxConcurrency
		} else {
			n += def
		}
	}
	return max(n, 16)
}

// Queue is the store-and-forward Deliverer: it answers only once a
// message is durable in the spool, then delivers it through the Sender
// with bounded concurrency, retries and dead letters.
type Queue struct {
	opts    Options
	spool   *Spool
	journal *journal
	sender  Sender
	log     *slog.Logger
	// fate settles every attempt's outcome, as the cluster backend's do.
	fate *Fate
	lock *os.File

	// ctx is passed to every Send; it is cancelled only when Close runs
	// out of time, so in-flight requests may finish during a shutdown.
	ctx    context.Context
	cancel context.CancelFunc

	quotaMu   sync.Mutex
	usedMsgs  int
	usedBytes int64

	floorMu sync.Mutex // serialises writes of floors.json

	// backlog is what a previous run left, read by loadBacklog; loaded is
	// closed when it is done. loadHook, set only by tests, runs before
	// each message is read.
	backlog  *backlog
	loaded   chan struct{}
	loadHook func(i int)

	mu       sync.Mutex // guards everything below and items' scheduling fields
	items    map[string]*item
	boxes    map[string]*mailbox
	order    []*mailbox // round-robin order for fairness
	rr       int
	inflight int
	// stopping is set by Close; Deliver refuses and no attempt starts.
	stopping atomic.Bool
	// paused is set by StopDispatch: no attempt starts, but Deliver still
	// spools, for the sessions finishing a transaction during a shutdown.
	// Both are set with mu held, so that a dispatch that holds mu either
	// has registered its attempt or sees them.
	paused atomic.Bool

	wake      chan struct{}
	quit      chan struct{}
	loopsDone sync.WaitGroup
	attempts  sync.WaitGroup
	closeOnce sync.Once
	// halt is closed when dispatching stops (StopDispatch or Close), so
	// that attempts prepared ahead and waiting for a request slot are not
	// made.
	halt     chan struct{}
	haltOnce sync.Once
}

// Open locks the spool at opts.Dir, clears what an interrupted process
// left in it, and lists the waiting messages; it returns as soon as new
// mail can be spooled. Start reads the waiting messages in the
// background. Nothing is delivered until Start.
func Open(opts Options, sender Sender) (*Queue, error) {
	opts = opts.withDefaults()
	if opts.Dir == "" {
		return nil, errors.New("queue: no spool directory (queue.dir)")
	}
	sp, err := openSpool(opts.Dir, opts.FS)
	if err != nil {
		return nil, err
	}
	lock, err := waitLock(opts.Dir, opts.LockWait)
	if err != nil {
		return nil, err
	}
	notePID(lock)
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{
		opts: opts, spool: sp, sender: sender, log: opts.Log, lock: lock, fate: opts.fate(),
		ctx: ctx, cancel: cancel,
		items: map[string]*item{}, boxes: map[string]*mailbox{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), loaded: make(chan struct{}), halt: make(chan struct{}),
	}
	for _, m := range opts.Mailboxes {
		q.mailboxFor(m.Address, "")
	}
	if err := q.load(); err != nil {
		cancel()
		unlockSpool(lock)
		return nil, err
	}
	return q, nil
}

// waitLock takes the spool lock, waiting briefly for an admin command
// that holds it; another daemon holding it is an error.
func waitLock(dir string, wait time.Duration) (*os.File, error) {
	deadline := time.Now().Add(wait)
	for {
		f, err := lockSpool(dir)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, errLocked) || time.Now().After(deadline) {
			if errors.Is(err, errLocked) {
				return nil, fmt.Errorf("queue.dir %s is in use by another graphrelay process (see %s/%s for its pid): %w", dir, dir, fileLock, err)
			}
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// load settles what the quick part of the start needs (see backlog) and
// opens the journal; the waiting messages are read by loadBacklog once
// the queue runs.
func (q *Queue) load() error {
	b, err := q.spool.openBacklog(q.log)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	q.backlog = b
	q.loadFloors()
	if q.journal, err = openJournal(filepath.Join(q.opts.Dir, areaJournal), q.opts.FS); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	q.opts.Observer.Damaged(q.spool.countDamaged())
	return nil
}

// Start begins delivering, serving admin requests, and reading the
// messages a previous run left, which are delivered as they are read.
func (q *Queue) Start() {
	q.loopsDone.Add(4)
	go q.dispatchLoop()
	go q.controlLoop()
	go q.loadBacklog()
	go func() {
		defer q.loopsDone.Done()
		q.spool.spares.fill(q.quit)
	}()
}

// Loaded is closed once every message a previous run left has been read
// and scheduled (or the queue was closed first).
func (q *Queue) Loaded() <-chan struct{} { return q.loaded }

// loadBacklog reads the previous run's messages and schedules each as it
// is read, while new mail is accepted. The quota counts them as they are
// read, so a spool near its quota may accept a little more during the
// load than it would after it.
func (q *Queue) loadBacklog() {
	defer q.loopsDone.Done()
	defer close(q.loaded)
	b := q.backlog
	q.backlog = nil
	if b == nil || len(b.ids) == 0 {
		if b != nil {
			q.finishBacklog(b, 0)
		}
		return
	}
	start := time.Now()
	q.log.Info("reading spooled messages; new mail is accepted meanwhile", "count", len(b.ids), "dir", q.opts.Dir)
	n := 0
	for i, id := range b.ids {
		if q.loadHook != nil {
			q.loadHook(i)
		}
		select {
		case <-q.quit:
			q.log.Info("stopped before every spooled message was read; the rest are read at the next start", "read", i, "count", len(b.ids))
			return
		default:
		}
		m, err := b.load(id)
		if err != nil {
			q.log.Error("cannot read the spool; the remaining spooled messages are read at the next start", "err", err,
				"hint", (&SpoolError{Err: err}).Hint())
			return
		}
		if m == nil {
			continue
		}
		n++
		rec := m.rec
		q.quotaMu.Lock()
		q.usedMsgs++
		q.usedBytes += rec.Envelope.Size
		q.quotaMu.Unlock()
		q.mu.Lock()
		it := newItem(rec, m.offset, true)
		q.insert(it)
		it.park()
		q.mu.Unlock()
		if n%64 == 1 {
			q.poke()
		}
	}
	q.poke()
	q.finishBacklog(b, n)
	q.log.Info("resuming spooled messages", "count", n, "dir", q.opts.Dir, "read_ms", ms(time.Since(start)))
}

// finishBacklog removes the previous run's journal and reports the
// quarantined entries.
func (q *Queue) finishBacklog(b *backlog, n int) {
	if err := b.finish(); err != nil {
		q.log.Error("cannot remove the replayed journal; it is replayed again at the next start", "err", err)
	}
	q.opts.Observer.Damaged(q.spool.countDamaged())
}

// Deliver spools msg durably and returns nil only then; delivery starts at
// once in the background.
func (q *Queue) Deliver(ctx context.Context, env *envelope.Envelope, msg io.Reader) error {
	start := time.Now()
	it, err := q.accept(env, msg, "", "")
	if err != nil {
		return err
	}
	if err := q.admit(it); err != nil {
		return err
	}
	// The SMTP session's "message accepted" line, written before the 250,
	// carries the same fields, so this one is for debugging: at info level
	// it was one more write(2) per message (issue 15).
	q.log.Debug("queued", "id", env.ID, "client_ip", env.ClientIP, "auth_user", env.AuthUser,
		"mailbox", env.Mailbox.Address, "rcpts", len(env.Recipients), "size", it.rec.Envelope.Size,
		"elapsed_ms", ms(time.Since(start)))
	q.add(it)
	return nil
}

// accept writes a message into the spool and returns its item, not yet
// scheduled. notice marks a message graphrelay generated itself; notices
// are not refused by the quota, because they report on mail already
// accepted.
func (q *Queue) accept(env *envelope.Envelope, msg io.Reader, notice, noticeFor string) (*item, error) {
	force := notice != ""
	if err := q.reserve(1, 0, force); err != nil {
		return nil, err
	}
	var reserved int64
	account := func(n int64) error {
		if err := q.reserve(0, n, force); err != nil {
			return err
		}
		reserved += n
		return nil
	}
	e := *env
	e.Recipients = append([]string(nil), env.Recipients...)
	rec := &Record{Version: recordVersion, Envelope: e, Notice: notice, NoticeFor: noticeFor,
		NextTry: time.Now(), Attempts: []Attempt{}}
	size, offset, err := q.spool.create(rec, msg, account)
	if err != nil {
		q.release(1, reserved)
		return nil, err
	}
	rec.Envelope.Size = size
	// The .msg file's envelope line is this record as it is.
	return newItem(rec, offset, true), nil
}

// reserve takes quota for msgs messages and n bytes.
func (q *Queue) reserve(msgs int, n int64, force bool) error {
	q.quotaMu.Lock()
	defer q.quotaMu.Unlock()
	if q.stopping.Load() {
		return &SpoolError{Op: "accept", Err: errStopping}
	}
	if !force && msgs > 0 && q.opts.MaxMessages > 0 && q.usedMsgs+msgs > q.opts.MaxMessages {
		return quotaError(fmt.Sprintf("queue.max_messages (%d)", q.opts.MaxMessages))
	}
	if !force && n > 0 && q.opts.MaxBytes > 0 && q.usedBytes+n > q.opts.MaxBytes {
		return quotaError(fmt.Sprintf("queue.max_bytes (%d)", q.opts.MaxBytes))
	}
	q.usedMsgs += msgs
	q.usedBytes += n
	return nil
}

// release returns quota when a message leaves queue/.
func (q *Queue) release(msgs int, n int64) {
	q.quotaMu.Lock()
	q.usedMsgs -= msgs
	q.usedBytes -= n
	q.quotaMu.Unlock()
}

// StopDispatch starts no new attempt from now on; the attempts in flight
// go on, and Deliver still spools. The daemon calls it first thing when it
// stops, so that nothing new goes to Graph while the SMTP side drains.
func (q *Queue) StopDispatch() {
	q.mu.Lock()
	q.paused.Store(true)
	q.mu.Unlock()
	q.haltOnce.Do(func() { close(q.halt) })
}

// Close stops starting attempts, waits for the attempts in flight until ctx
// ends, then cancels what is left (each interrupted attempt is recorded
// and resumes at the next start) and releases the spool.
func (q *Queue) Close(ctx context.Context) error {
	q.closeOnce.Do(func() {
		q.mu.Lock()
		q.stopping.Store(true)
		q.paused.Store(true)
		q.mu.Unlock()
		q.haltOnce.Do(func() { close(q.halt) })
		close(q.quit)
		q.loopsDone.Wait()
		done := make(chan struct{})
		go func() { q.attempts.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			q.log.Warn("Graph requests still in flight at the shutdown deadline; aborting them, they resume at the next start")
			q.cancel()
			<-done
		}
		q.cancel()
		// No attempt is left to recycle a file: empty the spares that
		// still hold a delivered message's bytes.
		q.spool.spares.sweepAll()
		q.journal.close()
		q.spool.close()
		unlockSpool(q.lock)
	})
	return nil
}

// ms returns milliseconds with microsecond precision, for log lines.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
