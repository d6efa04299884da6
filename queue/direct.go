package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
)

// Sender relays one message held in raw.
type Sender interface {
	Send(ctx context.Context, env *envelope.Envelope, raw io.ReaderAt, size int64) (graph.Receipt, error)
}

// DirectOptions configure direct mode. Zero values take the defaults noted
// on each field.
type DirectOptions struct {
	// TmpDir stages message bytes (queue.dir/direct in the daemon, which
	// the shipped container and unit make writable); "" is the system
	// default.
	TmpDir string
	// Mailboxes and DefaultConcurrency are the per-mailbox limits, as in
	// queue mode (Options).
	Mailboxes          []MailboxLimits
	DefaultConcurrency int
	// MaxWait bounds how long a session waits for its mailbox's gate
	// before it answers 451 with the time to retry (default
	// DefaultDirectWait).
	MaxWait time.Duration
	// RetryMax caps a Retry-After from Graph (default 15m, queue.retry_max).
	RetryMax time.Duration
	// Admitter is the preflight (see Admitter); nil admits every message.
	Admitter Admitter
	// Observer receives delivery events; nil discards them.
	Observer Observer
}

// DefaultDirectWait is how long a direct-mode session waits for a busy or
// throttled mailbox before it answers 451. It is well below the SMTP
// clients' usual 10-minute wait for the reply to the end of data.
const DefaultDirectWait = 30 * time.Second

// Direct is the synchronous Deliverer. Every message passes its mailbox's
// gate, the same as in queue mode, so direct mode never sends a mailbox
// more concurrent requests than Graph allows, nor before a Retry-After.
type Direct struct {
	sender Sender
	opts   DirectOptions

	mu    sync.Mutex
	gates map[string]*gate
}

// NewDirect returns a Deliverer that sends inline. Message bytes are staged
// in opts.TmpDir so a 35 MB message is not held in memory while it is
// converted.
func NewDirect(s Sender, opts DirectOptions) *Direct {
	if opts.MaxWait <= 0 {
		opts.MaxWait = DefaultDirectWait
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 15 * time.Minute
	}
	if opts.DefaultConcurrency <= 0 {
		opts.DefaultConcurrency = 4
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	return &Direct{sender: s, opts: opts, gates: map[string]*gate{}}
}

func (d *Direct) gateFor(m envelope.Mailbox) *gate {
	key := mailboxKey(m.Address, m.ID)
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.gates[key]
	if !ok {
		g = newGate(limitsFor(key, d.opts.Mailboxes, d.opts.DefaultConcurrency))
		d.gates[key] = g
	}
	return g
}

// Deliver stages msg in a temporary file, checks it (the preflight), waits
// for its mailbox's gate and sends it.
func (d *Direct) Deliver(ctx context.Context, env *envelope.Envelope, msg io.Reader) error {
	f, err := os.CreateTemp(d.opts.TmpDir, "graphrelay-"+env.ID+"-*.eml")
	if err != nil {
		return stagingError{fmt.Errorf("stage message: %w", err)}
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	n, err := io.Copy(f, msg)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return stagingError{fmt.Errorf("stage message: %w", err)}
		}
		// Errors from the SMTP stream (size limit, timeout) pass unchanged so
		// the reply names them.
		return err
	}
	if d.opts.Admitter != nil {
		if err := d.opts.Admitter.Admit(env, f, n); err != nil {
			return err
		}
	}
	g := d.gateFor(env.Mailbox)
	if ok, retryAt := g.acquire(ctx, time.Now().Add(d.opts.MaxWait)); !ok {
		d.opts.Observer.DeliveryFailed(env.Mailbox.Address, "", OutcomeTransient, false)
		return &busyError{mailbox: env.Mailbox.Address, retryAt: retryAt}
	}
	start := time.Now()
	rcpt, err := d.sender.Send(ctx, env, f, n)
	end := time.Now()
	res := classify(rcpt, err, false, d.opts.RetryMax)
	if res.retryAfter > 0 || res.status == http.StatusTooManyRequests {
		d.opts.Observer.Throttled(env.Mailbox.Address, res.status == http.StatusTooManyRequests, g.raise(end.Add(res.retryAfter), end))
	}
	g.release(end, res.retryAfter)
	if res.outcome != "" {
		// In direct mode the client retries, not graphrelay.
		d.opts.Observer.DeliveryFailed(env.Mailbox.Address, res.code, res.outcome, false)
		return &outcomeError{res: res, now: end}
	}
	d.opts.Observer.Delivered(env.Mailbox.Address, end.Sub(start))
	return nil
}

// outcomeError carries a failed attempt's outcome to smtpd, which answers
// from its methods: Permanent is the outcome's, not re-decided.
type outcomeError struct {
	res result
	now time.Time
}

func (e *outcomeError) Error() string   { return e.res.err.Error() }
func (e *outcomeError) Unwrap() error   { return e.res.err }
func (e *outcomeError) Permanent() bool { return e.res.outcome == OutcomePermanent }
func (e *outcomeError) Temporary() bool { return e.res.outcome != OutcomePermanent }
func (e *outcomeError) Hint() string    { return e.res.hint }

// RetryIn is how long the client should wait: Graph's Retry-After, capped.
func (e *outcomeError) RetryIn() time.Duration { return e.res.retryAfter }

// busyError is a mailbox whose gate did not open within the direct-mode
// wait: its requests are all in flight, or Graph asked to wait.
type busyError struct {
	mailbox string
	retryAt time.Time
}

func (e *busyError) Error() string {
	return fmt.Sprintf("mailbox %s is at Graph's limit (requests in flight, pacing or Retry-After); try again after %s",
		e.mailbox, e.retryAt.UTC().Format(time.RFC3339))
}
func (e *busyError) Temporary() bool { return true }
func (e *busyError) Permanent() bool { return false }
func (e *busyError) Throttled() bool { return true }
func (e *busyError) RetryIn() time.Duration {
	return max(time.Until(e.retryAt), time.Second).Round(time.Second)
}
func (e *busyError) Hint() string {
	return "more sessions send as this mailbox at once than mailboxes[].max_concurrency (Graph allows 4) lets through, or Graph throttled it; the client retries. Spread senders over mailboxes, or use queue mode"
}

// stagingError is a local disk failure: temporary, and a full disk is
// reported as insufficient storage.
type stagingError struct{ err error }

func (e stagingError) Error() string   { return e.err.Error() }
func (e stagingError) Unwrap() error   { return e.err }
func (e stagingError) Temporary() bool { return true }
func (e stagingError) InsufficientStorage() bool {
	return errors.Is(e.err, syscall.ENOSPC) || errors.Is(e.err, syscall.EDQUOT)
}
func (e stagingError) Hint() string {
	return "graphrelay could not write its staging file; check free space and permissions of queue.dir, where direct mode stages messages (queue.dir/direct)"
}
