package queue

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/graphrelay/graphrelay/graph"
)

// This file lends the local queue's decisions to the other queue backend
// (package cluster, NATS JetStream), so both classify outcomes and write
// notices with the same code instead of a copy; Fate (fate.go) settles
// the outcomes of both.

// Result is one classified delivery attempt (see classify).
type Result struct{ r result }

// Classify turns a Send outcome into a Result; it is classify, the one
// place that decides permanent or transient. A Retry-After is capped at
// retryMax (queue.retry_max), so a huge value cannot park a mailbox.
func Classify(rcpt graph.Receipt, err error, stopping bool, retryMax time.Duration) Result {
	return Result{classify(rcpt, err, stopping, retryMax)}
}

// Fill copies the result into an attempt record.
func (r Result) Fill(a *Attempt, end time.Time) { r.r.fill(a, end) }

// RetryAfter is Graph's Retry-After, 0 when none came.
func (r Result) RetryAfter() time.Duration { return r.r.retryAfter }

// Status is the HTTP status of Graph's answer, 0 when none came.
func (r Result) Status() int { return r.r.status }

// Expiry is when the message is given up if it still fails.
func (r *Record) Expiry(maxAge time.Duration) time.Time { return r.expiry(maxAge) }

// Notice kinds, exported for other backends.
const (
	NoticeFailed  = noticeFailed
	NoticeDelayed = noticeDelayed
)

// BuildNotice renders a notice about rec with the local queue's text.
// kept says where the dead letter can be found.
func BuildNotice(kind, id, from string, to []string, now time.Time, rec *Record, res Result,
	expiry time.Time, kept string, orig io.ReaderAt, size int64) ([]byte, error) {
	return buildNotice(noticeInput{Kind: kind, ID: id, From: from, To: to, Now: now, Rec: rec,
		Res: res.r, Expiry: expiry, Kept: kept}, orig, size)
}

// NewRecord is a fresh record for an accepted message.
func NewRecord(rec Record) *Record {
	rec.Version = recordVersion
	if rec.Attempts == nil {
		rec.Attempts = []Attempt{}
	}
	return &rec
}

// DecodeRecord parses and checks a record.
func DecodeRecord(b []byte) (*Record, error) { return decodeRecord(b) }

// Export moves every message out of the spool at dir, waiting messages
// and then dead letters, oldest first: put receives each record (the
// journal's interrupted attempts merged in, as at a daemon's start) and
// its bytes, and the message is removed from the spool once put returns
// nil. No daemon may hold the spool. It is how a host's spool moves into
// another queue backend ("graphrelay queue migrate").
func Export(dir string, log *slog.Logger, put func(rec *Record, body io.Reader) error) (moved int, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := OpenAdmin(dir); err != nil {
		return 0, err
	}
	sp, err := openSpool(dir, OSFS{})
	if err != nil {
		return 0, err
	}
	lock, err := lockSpool(dir)
	if err != nil {
		if errors.Is(err, errLocked) {
			return 0, fmt.Errorf("a graphrelay daemon holds %s: stop it first, then migrate: %w", dir, err)
		}
		return 0, err
	}
	defer unlockSpool(lock)
	waiting, err := sp.settle(log)
	if err != nil {
		return 0, err
	}
	failed, problems := sp.scan(areaFailed)
	for _, p := range problems {
		log.Warn("a dead letter cannot be read and stays in the spool", "err", p)
	}
	for _, batch := range []struct {
		area string
		msgs []*stored
	}{{areaQueue, waiting}, {areaFailed, failed}} {
		for _, m := range batch.msgs {
			id := m.rec.Envelope.ID
			f, body, err := sp.openMessage(batch.area, id, m.offset, m.rec.Envelope.Size)
			if err != nil {
				return moved, err
			}
			err = put(m.rec, body)
			f.Close()
			if err != nil {
				return moved, fmt.Errorf("%s: %w", id, err)
			}
			if err := sp.remove(batch.area, id); err != nil {
				return moved, fmt.Errorf("%s was copied but cannot be removed from the spool (a second run skips it): %w", id, err)
			}
			moved++
		}
	}
	return moved, nil
}
