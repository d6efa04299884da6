package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
)

// recordVersion is written into every record. A newer daemon reads older
// records; an older one refuses records it does not know.
const recordVersion = 1

// Record is a spooled message's record: the envelope and policy decision
// it was accepted with, and its delivery history. It is the envelope line
// of the .msg file at acceptance, and the .json file once an attempt has
// failed. FORMAT.md describes both for admins.
type Record struct {
	Version  int               `json:"version"`
	Envelope envelope.Envelope `json:"envelope"`
	// Notice is "failed" or "delayed" when graphrelay itself generated the
	// message to tell an admin about another one. Notices never cause
	// notices.
	Notice string `json:"notice,omitempty"`
	// NoticeFor is the queue id of the message a notice is about.
	NoticeFor string `json:"notice_for,omitempty"`
	// NextTry is when the next attempt may start. Each attempt's journal
	// entry pushes it one backoff interval ahead, so a crash during the
	// attempt does not make the restarted daemon hammer Graph with the
	// same message.
	NextTry time.Time `json:"next_try"`
	// RequeuedAt is set by "queue requeue"; queue.max_age counts from it
	// instead of from the receive time.
	RequeuedAt time.Time `json:"requeued_at,omitzero"`
	// DelayNoticeID is the queue id of the "delayed" notice, once sent.
	DelayNoticeID string    `json:"delay_notice_id,omitempty"`
	Attempts      []Attempt `json:"attempts"`
	// Dead is set when the message became a dead letter. The directory the
	// record is in (queue/ or failed/) is what counts; Dead explains why.
	Dead *DeadLetter `json:"dead,omitempty"`
}

// Attempt outcomes.
const (
	// OutcomeStarted marks an attempt under way: in memory, and in
	// listings that merge the journal. It is never written to a record;
	// an attempt the daemon did not finish becomes "interrupted".
	OutcomeStarted     = "started"
	OutcomeTransient   = "transient"
	OutcomePermanent   = "permanent"
	OutcomeInterrupted = "interrupted"
	OutcomeLocal       = "local" // the spool could not read the message
)

// Attempt is one try at handing the message to Graph.
type Attempt struct {
	N       int       `json:"n"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitzero"`
	Outcome string    `json:"outcome"`
	// Op is the Graph operation that failed: token, sendMail, ...
	Op              string  `json:"op,omitempty"`
	Status          int     `json:"status,omitempty"`
	Code            string  `json:"code,omitempty"`
	Error           string  `json:"error,omitempty"`
	RequestID       string  `json:"request_id,omitempty"`
	ClientRequestID string  `json:"client_request_id,omitempty"`
	RetryAfter      float64 `json:"retry_after_seconds,omitempty"`
	// Ambiguous means Graph may have accepted the message although no
	// success was seen; a retry may then deliver it twice.
	Ambiguous bool   `json:"ambiguous,omitempty"`
	Hint      string `json:"hint,omitempty"`
}

// DeadLetter says why a message was given up.
type DeadLetter struct {
	At time.Time `json:"at"`
	// Reason is "permanent" (Graph refused it, or it cannot be
	// converted) or "expired" (still failing after queue.max_age).
	Reason    string `json:"reason"`
	Status    int    `json:"status,omitempty"`
	Code      string `json:"code,omitempty"`
	Error     string `json:"error,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Hint      string `json:"hint,omitempty"`
	// NoticeID is the queue id of the notice sent to queue.notice_to.
	NoticeID string `json:"notice_id,omitempty"`
}

// LastAttempt returns the latest attempt, or nil before the first.
func (r *Record) LastAttempt() *Attempt {
	if len(r.Attempts) == 0 {
		return nil
	}
	return &r.Attempts[len(r.Attempts)-1]
}

// LastError summarises the latest failure for listings. An attempt that
// is still "started" has no outcome yet (it is running, or the daemon died
// during it), so the failure before it is the last one known.
func (r *Record) LastError() string {
	if r.Dead != nil && r.Dead.Error != "" {
		return r.Dead.Error
	}
	for i := len(r.Attempts) - 1; i >= 0; i-- {
		if a := r.Attempts[i]; a.Error != "" {
			return a.Error
		}
	}
	return ""
}

// expiry is when the message is given up if it still fails.
func (r *Record) expiry(maxAge time.Duration) time.Time {
	basis := r.Envelope.ReceivedAt
	if r.RequeuedAt.After(basis) {
		basis = r.RequeuedAt
	}
	return basis.Add(maxAge)
}

// encodeRecord renders a record as indented JSON, for admins reading it
// with cat or jq.
func encodeRecord(r *Record) ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode record %s: %w", r.Envelope.ID, err)
	}
	return append(b, '\n'), nil
}

// errVersion marks a record written by a newer graphrelay. Such a record
// is not damaged, so it is left in place for the daemon that wrote it.
var errVersion = errors.New("record format not supported by this graphrelay")

// decodeRecord parses a record, from a .json file or an envelope line.
func decodeRecord(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse record: %w", err)
	}
	if r.Version < 1 {
		return nil, fmt.Errorf("record has no valid version (%d)", r.Version)
	}
	if r.Version > recordVersion {
		return nil, fmt.Errorf("%w: version %d (this graphrelay knows 1 to %d)", errVersion, r.Version, recordVersion)
	}
	if !ValidID(r.Envelope.ID) {
		return nil, fmt.Errorf("record has an invalid queue id %q", r.Envelope.ID)
	}
	return &r, nil
}

// ValidID reports whether id can be a queue id: envelope.NewID's lower-case
// Crockford base32. Admin commands check it before building a path, so an
// argument like "../x" cannot leave the spool.
func ValidID(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}
