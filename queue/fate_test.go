package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
)

// fakeHolder records what Fate asks of a backend.
type fakeHolder struct {
	rec                          *Record
	deleted                      bool
	removeErr, retryErr, buryErr error
	noticeErr                    error
	calls                        []string
}

func (h *fakeHolder) Record() *Record { return h.rec }
func (h *fakeHolder) Deleted() bool   { return h.deleted }
func (h *fakeHolder) Remove() error   { h.calls = append(h.calls, "remove"); return h.removeErr }
func (h *fakeHolder) Retry() error    { h.calls = append(h.calls, "retry"); return h.retryErr }
func (h *fakeHolder) Bury() error     { h.calls = append(h.calls, "bury"); return h.buryErr }
func (h *fakeHolder) Done()           { h.calls = append(h.calls, "done") }
func (h *fakeHolder) Notify(kind string, _ Result, _ time.Time) (string, error) {
	h.calls = append(h.calls, "notify "+kind)
	if h.noticeErr != nil {
		return "", h.noticeErr
	}
	return "N-" + kind, nil
}

// logLines keeps each log record's message and attribute keys.
type logLines struct {
	mu    sync.Mutex
	lines []string // "message|key key ..."
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logLines) WithGroup(string) slog.Handler            { return l }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	var keys []string
	r.Attrs(func(a slog.Attr) bool { keys = append(keys, a.Key); return true })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, r.Message+"|"+strings.Join(keys, " "))
	return nil
}

// messages are the log lines' messages, in order.
func (l *logLines) messages() []string {
	var m []string
	for _, s := range l.lines {
		m = append(m, s[:strings.Index(s, "|")])
	}
	return m
}

// TestFateSettles is the table of what becomes of a message after an
// attempt: which storage actions the backend is asked for, in which
// order, what the record says, what is counted and which lines are
// logged. Both queue backends settle through Fate, so this is their
// common behaviour.
func TestFateSettles(t *testing.T) {
	received := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	end := received.Add(time.Hour)
	transient := result{outcome: OutcomeTransient, op: "sendMail", status: 503, code: "ServiceUnavailable",
		err: errors.New("503"), hint: "Graph is unavailable"}
	with := func(r result, f func(*result)) result { f(&r); return r }
	tests := []struct {
		name   string
		res    result
		n      int
		setup  func(*fakeHolder, *Fate)
		calls  []string
		logs   []string
		failed []string // observer's DeliveryFailed
		dead   []string // observer's DeadLettered
		check  func(t *testing.T, rec *Record)
	}{
		{name: "delivered", res: result{requestID: "r1", clientRequestID: "c1"}, n: 1,
			calls: []string{"remove", "done"}, logs: []string{"delivered"}},
		{name: "delivered although an admin deleted it meanwhile", res: result{}, n: 1,
			setup: func(h *fakeHolder, _ *Fate) { h.deleted = true },
			calls: []string{"remove", "done"}, logs: []string{"delivered"}},
		{name: "delivered but not removable", res: result{}, n: 1,
			setup: func(h *fakeHolder, _ *Fate) { h.removeErr = errors.New("EIO") },
			calls: []string{"remove", "done"},
			logs:  []string{"delivered, but cannot remove it from the queue; it may be sent again", "delivered"}},
		{name: "failed after an admin deleted it", res: transient, n: 1,
			setup: func(h *fakeHolder, _ *Fate) { h.deleted = true },
			calls: []string{"remove", "done"}, logs: []string{"deleted by admin"}},
		{name: "permanent, with a failure notice", res: with(transient, func(r *result) { r.outcome, r.status = OutcomePermanent, 400 }), n: 1,
			calls: []string{"notify failed", "bury", "done"}, logs: []string{"failed"},
			failed: []string{"ServiceUnavailable permanent false"}, dead: []string{"permanent"},
			check: func(t *testing.T, rec *Record) {
				if rec.Dead == nil || rec.Dead.Reason != "permanent" || rec.Dead.NoticeID != "N-failed" || rec.Dead.Status != 400 {
					t.Errorf("dead letter %+v", rec.Dead)
				}
			}},
		{name: "permanent, null sender: no notice", res: with(transient, func(r *result) { r.outcome = OutcomePermanent }), n: 1,
			setup: func(h *fakeHolder, _ *Fate) { h.rec.Envelope.From = "" },
			calls: []string{"bury", "done"}, logs: []string{"failed"},
			failed: []string{"ServiceUnavailable permanent false"}, dead: []string{"permanent"}},
		{name: "permanent notice about a notice: no notice", res: with(transient, func(r *result) { r.outcome = OutcomePermanent }), n: 1,
			setup: func(h *fakeHolder, _ *Fate) { h.rec.Notice, h.rec.NoticeFor = noticeFailed, "X" },
			calls: []string{"bury", "done"}, logs: []string{"failed"},
			failed: []string{"ServiceUnavailable permanent false"}, dead: []string{"permanent"}},
		{name: "permanent, the notice cannot be queued", res: with(transient, func(r *result) { r.outcome = OutcomePermanent }), n: 1,
			setup: func(h *fakeHolder, _ *Fate) { h.noticeErr = errors.New("spool full") },
			calls: []string{"notify failed", "bury", "done"}, logs: []string{"cannot queue the failure notice", "failed"},
			failed: []string{"ServiceUnavailable permanent false"}, dead: []string{"permanent"},
			check: func(t *testing.T, rec *Record) {
				if rec.Dead == nil || rec.Dead.NoticeID != "" {
					t.Errorf("dead letter %+v", rec.Dead)
				}
			}},
		{name: "the dead letter cannot be stored: no failed line", res: with(transient, func(r *result) { r.outcome = OutcomePermanent }), n: 1,
			setup: func(h *fakeHolder, _ *Fate) { h.buryErr = errors.New("no quorum") },
			calls: []string{"notify failed", "bury", "done"}, logs: nil,
			failed: []string{"ServiceUnavailable permanent false"}, dead: []string{"permanent"}},
		{name: "transient: backoff", res: transient, n: 1,
			calls: []string{"retry", "done"}, logs: []string{"deferred"}, failed: []string{"ServiceUnavailable transient true"},
			check: func(t *testing.T, rec *Record) {
				if rec.NextTry.Before(end) || rec.NextTry.After(end.Add(time.Minute)) {
					t.Errorf("next try %v, want within retry_initial (1m) of %v", rec.NextTry, end)
				}
			}},
		{name: "transient: Retry-After beyond the backoff", res: with(transient, func(r *result) { r.retryAfter = 30 * time.Minute }), n: 1,
			calls: []string{"retry", "done"}, logs: []string{"deferred"}, failed: []string{"ServiceUnavailable transient true"},
			check: func(t *testing.T, rec *Record) {
				if !rec.NextTry.Equal(end.Add(30 * time.Minute)) {
					t.Errorf("next try %v, want the Retry-After's end %v", rec.NextTry, end.Add(30*time.Minute))
				}
			}},
		{name: "transient: the last try is at the deadline", res: with(transient, func(r *result) { r.retryAfter = 48 * time.Hour }), n: 1,
			calls: []string{"retry", "done"}, logs: []string{"deferred"}, failed: []string{"ServiceUnavailable transient true"},
			check: func(t *testing.T, rec *Record) {
				if want := received.Add(24 * time.Hour); !rec.NextTry.Equal(want) {
					t.Errorf("next try %v, want queue.max_age's end %v", rec.NextTry, want)
				}
			}},
		{name: "transient past queue.max_age: expired", res: transient, n: 9,
			setup: func(h *fakeHolder, _ *Fate) { h.rec.Envelope.ReceivedAt = end.Add(-25 * time.Hour) },
			calls: []string{"notify failed", "bury", "done"}, logs: []string{"failed"},
			failed: []string{"ServiceUnavailable transient false"}, dead: []string{"expired"},
			check: func(t *testing.T, rec *Record) {
				if rec.Dead == nil || rec.Dead.Reason != "expired" || !strings.HasPrefix(rec.Dead.Hint, "Graph kept failing temporarily") {
					t.Errorf("dead letter %+v", rec.Dead)
				}
			}},
		{name: "requeued: queue.max_age counts from the requeue", res: transient, n: 9,
			setup: func(h *fakeHolder, _ *Fate) {
				h.rec.Envelope.ReceivedAt = end.Add(-25 * time.Hour)
				h.rec.RequeuedAt = end.Add(-time.Hour)
			},
			calls: []string{"retry", "done"}, logs: []string{"deferred"}, failed: []string{"ServiceUnavailable transient true"}},
		{name: "transient: the record cannot be stored: no deferred line", res: transient, n: 1,
			setup: func(h *fakeHolder, _ *Fate) { h.retryErr = errors.New("changed by an admin") },
			calls: []string{"retry", "done"}, logs: nil, failed: []string{"ServiceUnavailable transient true"}},
		{name: "transient and ambiguous", res: with(transient, func(r *result) { r.ambiguous = true }), n: 2,
			calls:  []string{"retry", "done"},
			logs:   []string{"possible duplicate: Graph may have accepted this message although no success was seen; a retry can deliver it twice", "deferred"},
			failed: []string{"ServiceUnavailable transient true"}},
		{name: "transient after delay_notice_after: one delay notice", res: transient, n: 3,
			setup: func(_ *fakeHolder, f *Fate) { f.DelayNoticeAfter = 30 * time.Minute },
			calls: []string{"notify delayed", "retry", "done"}, logs: []string{"deferred"}, failed: []string{"ServiceUnavailable transient true"},
			check: func(t *testing.T, rec *Record) {
				if rec.DelayNoticeID != "N-delayed" {
					t.Errorf("delay notice id %q", rec.DelayNoticeID)
				}
			}},
		{name: "transient, delay notice already sent", res: transient, n: 4,
			setup: func(h *fakeHolder, f *Fate) { f.DelayNoticeAfter = 30 * time.Minute; h.rec.DelayNoticeID = "N-old" },
			calls: []string{"retry", "done"}, logs: []string{"deferred"}, failed: []string{"ServiceUnavailable transient true"}},
		{name: "transient before delay_notice_after", res: transient, n: 3,
			setup: func(_ *fakeHolder, f *Fate) { f.DelayNoticeAfter = 2 * time.Hour },
			calls: []string{"retry", "done"}, logs: []string{"deferred"}, failed: []string{"ServiceUnavailable transient true"}},
		{name: "interrupted: resumes at once", res: result{outcome: OutcomeInterrupted, ambiguous: true, err: context.Canceled}, n: 1,
			calls: []string{"retry", "done"},
			logs:  []string{"possible duplicate: Graph may have accepted this message although no success was seen; a retry can deliver it twice", "interrupted"},
			check: func(t *testing.T, rec *Record) {
				if !rec.NextTry.Equal(end) {
					t.Errorf("next try %v, want the attempt's end %v", rec.NextTry, end)
				}
			}},
		{name: "local error: transient", res: unreadable(errors.New("EACCES")), n: 1,
			calls: []string{"retry", "done"}, logs: []string{"deferred"}, failed: []string{" transient true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logLines{}
			obs := &recordingObserver{delivered: map[string]int{}, depth: map[string]int{}}
			f := &Fate{RetryInitial: time.Minute, RetryMax: 2 * time.Minute, MaxAge: 24 * time.Hour,
				NoticeTo: []string{"admin@company.com"}, NoticeMailbox: "alerts@company.com",
				Observer: obs, Log: slog.New(logs)}
			h := &fakeHolder{rec: NewRecord(Record{Envelope: envelope.Envelope{ID: "Q1", From: "printer@company.com",
				Recipients: []string{"a@company.com"}, Mailbox: envelope.Mailbox{Address: "alerts@company.com"}, ReceivedAt: received}})}
			if tt.setup != nil {
				tt.setup(h, f)
			}
			f.settle(h, tt.n, tt.res, end.Add(-time.Second), end)
			if !slices.Equal(h.calls, tt.calls) {
				t.Errorf("backend was asked %q, want %q", h.calls, tt.calls)
			}
			if got := logs.messages(); !slices.Equal(got, tt.logs) {
				t.Errorf("logged %q, want %q", got, tt.logs)
			}
			var failed, dead []string
			for _, s := range obs.failed {
				failed = append(failed, strings.TrimPrefix(s, "alerts@company.com "))
			}
			for _, s := range obs.dead {
				dead = append(dead, strings.TrimPrefix(s, "alerts@company.com "))
			}
			if !slices.Equal(failed, tt.failed) || !slices.Equal(dead, tt.dead) {
				t.Errorf("counted failures %q and dead letters %q, want %q and %q", failed, dead, tt.failed, tt.dead)
			}
			wantDelivered := 0
			if tt.res.outcome == "" {
				wantDelivered = 1
			}
			if got := obs.delivered["alerts@company.com"]; got != wantDelivered {
				t.Errorf("counted %d deliveries, want %d", got, wantDelivered)
			}
			if tt.check != nil {
				tt.check(t, h.rec)
			}
		})
	}
}

// TestFateLogLines pins the fields of the outcome lines, which admins and
// their log pipelines search, so that no backend's lines lack one.
func TestFateLogLines(t *testing.T) {
	common := "id client_ip auth_user mailbox rcpts size"
	want := map[string]string{
		"delivered":   common + " attempt request_id client_request_id attempt_ms elapsed_ms",
		"deferred":    common + " attempt op status code request_id client_request_id ambiguous retry_in elapsed_ms err hint",
		"failed":      common + " reason attempts op status code request_id client_request_id elapsed_ms err hint notice_id",
		"interrupted": common + " attempt client_request_id",
	}
	now := time.Now()
	for _, res := range []result{{}, {outcome: OutcomeTransient}, {outcome: OutcomePermanent}, {outcome: OutcomeInterrupted}} {
		logs := &logLines{}
		f := &Fate{RetryInitial: time.Minute, RetryMax: time.Minute, MaxAge: time.Hour, Observer: nopObserver{}, Log: slog.New(logs)}
		h := &fakeHolder{rec: NewRecord(Record{Envelope: envelope.Envelope{ID: "Q1", ReceivedAt: now}})}
		f.settle(h, 1, res, now, now)
		if len(logs.lines) != 1 {
			t.Fatalf("%q: logged %q, want one line", res.outcome, logs.lines)
		}
		msg, keys, _ := strings.Cut(logs.lines[0], "|")
		if want[msg] != keys {
			t.Errorf("%q line has fields\n %s\nwant\n %s", msg, keys, want[msg])
		}
	}
}

// TestFateExpire: a message whose queue.max_age passed while it waited
// (held back by Retry-After) is given up without a new attempt, with its
// last attempt's error.
func TestFateExpire(t *testing.T) {
	logs := &logLines{}
	obs := &recordingObserver{delivered: map[string]int{}, depth: map[string]int{}}
	f := &Fate{RetryInitial: time.Minute, RetryMax: time.Minute, MaxAge: time.Hour, Observer: obs, Log: slog.New(logs)}
	now := time.Now()
	h := &fakeHolder{rec: NewRecord(Record{Envelope: envelope.Envelope{ID: "Q1", ReceivedAt: now.Add(-2 * time.Hour),
		Mailbox: envelope.Mailbox{Address: "alerts@company.com"}},
		Attempts: []Attempt{{N: 1, Outcome: OutcomeTransient, Status: 429, Code: "TooManyRequests", Error: "throttled"}}})}
	f.Expire(h, Result{lastResult(h.rec)}, now)
	if want := []string{"bury", "done"}; !slices.Equal(h.calls, want) {
		t.Errorf("backend was asked %q, want %q", h.calls, want)
	}
	if d := h.rec.Dead; d == nil || d.Reason != "expired" || d.Status != 429 || d.Error != "throttled" {
		t.Errorf("dead letter %+v", d)
	}
	if got := fmt.Sprint(obs.dead); got != "[alerts@company.com expired]" {
		t.Errorf("counted dead letters %s", got)
	}
}
