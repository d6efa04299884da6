package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
	"github.com/graphrelay/graphrelay/policy"
)

// fakeErr implements the classification methods the way graph and queue
// errors do.
type fakeErr struct {
	temp, denied, large, invalid, full bool
}

func (e fakeErr) Error() string             { return "internal detail: AADSTS700027 token refused" }
func (e fakeErr) Permanent() bool           { return !e.temp }
func (e fakeErr) AccessDenied() bool        { return e.denied }
func (e fakeErr) TooLarge() bool            { return e.large }
func (e fakeErr) InvalidContent() bool      { return e.invalid }
func (e fakeErr) InsufficientStorage() bool { return e.full }

// busyErr is a mailbox whose gate did not open in time (queue's busyError).
type busyErr struct{}

func (busyErr) Error() string          { return "mailbox at its limit" }
func (busyErr) Temporary() bool        { return true }
func (busyErr) Permanent() bool        { return false }
func (busyErr) Throttled() bool        { return true }
func (busyErr) RetryIn() time.Duration { return 42 * time.Second }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestToSMTPError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		enh  smtp.EnhancedCode
	}{
		{"success", nil, 250, smtp.EnhancedCode{2, 0, 0}},
		{"transient graph", fmt.Errorf("relay: %w", fakeErr{temp: true}), 451, smtp.EnhancedCode{4, 4, 1}},
		{"permanent graph", fmt.Errorf("relay: %w", fakeErr{}), 554, smtp.EnhancedCode{5, 3, 0}},
		{"access denied", fmt.Errorf("relay: %w", fakeErr{denied: true}), 550, smtp.EnhancedCode{5, 7, 1}},
		{"too large for graph", fakeErr{large: true}, 552, smtp.EnhancedCode{5, 3, 4}},
		{"unparseable", fmt.Errorf("convert: %w", fakeErr{invalid: true}), 554, smtp.EnhancedCode{5, 6, 0}},
		{"disk full", fmt.Errorf("stage: %w", fakeErr{temp: true, full: true}), 452, smtp.EnhancedCode{4, 3, 1}},
		{"size limit from the stream", fmt.Errorf("copy: %w", smtp.ErrDataTooLarge), 552, smtp.EnhancedCode{5, 3, 4}},
		{"wrapped SMTPError passes through bare", fmt.Errorf("x: %w", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "bye"}), 421, smtp.EnhancedCode{4, 3, 2}},
		{"mailbox busy in direct mode", fmt.Errorf("deliver: %w", busyErr{}), 451, smtp.EnhancedCode{4, 4, 5}},
		{"read timeout", fmt.Errorf("copy: %w", &os.PathError{Op: "read", Err: timeoutErr{}}), 451, smtp.EnhancedCode{4, 4, 2}},
		{"policy: sender", &policy.Error{Kind: policy.SenderDenied, Reason: "sender <x@y> not permitted"}, 550, smtp.EnhancedCode{5, 7, 1}},
		{"policy: relay", fmt.Errorf("rcpt: %w", &policy.Error{Kind: policy.RelayDenied, Reason: "relay not permitted"}), 550, smtp.EnhancedCode{5, 7, 1}},
		{"policy: recipients at RCPT", &policy.Error{Kind: policy.TooManyRecipients, Reason: "too many"}, 452, smtp.EnhancedCode{4, 5, 3}},
		{"policy: recipients at the end of DATA", &policy.Error{Kind: policy.TooManyRecipients, Reason: "too many", AtData: true}, 550, smtp.EnhancedCode{5, 5, 3}},
		{"malformed AUTH data", fmt.Errorf("PLAIN: %w", errMalformedAuth), 501, smtp.EnhancedCode{5, 5, 2}},
		{"policy: auth", &policy.Error{Kind: policy.AuthRequired, Reason: "authentication required"}, 530, smtp.EnhancedCode{5, 7, 0}},
		{"policy: From", &policy.Error{Kind: policy.FromDenied, Reason: "header From must be <a@b>"}, 550, smtp.EnhancedCode{5, 7, 1}},
		{"bad sender syntax", &addressError{sender: true, err: &mailhdr.AddressError{Reason: "x"}}, 553, smtp.EnhancedCode{5, 1, 7}},
		{"bad recipient syntax", &addressError{err: &mailhdr.AddressError{Reason: "x"}}, 553, smtp.EnhancedCode{5, 1, 3}},
		{"NUL in sender", &addressError{sender: true, err: &mailhdr.AddressError{Reason: "x", BadBytes: true}}, 501, smtp.EnhancedCode{5, 1, 7}},
		{"control byte in recipient", &addressError{err: &mailhdr.AddressError{Reason: "x", BadBytes: true}}, 501, smtp.EnhancedCode{5, 1, 3}},
		{"lookalike recipient", &addressError{err: &mailhdr.AddressError{Reason: "x", NonCanonical: true}}, 553, smtp.EnhancedCode{5, 1, 3}},
		{"listener requires auth", errAuthRequired, 530, smtp.EnhancedCode{5, 7, 0}},
		{"rule rate limit", errRateLimited{rule: "rules[1]", perMinute: 5}, 451, smtp.EnhancedCode{4, 7, 1}},
		{"line too long in DATA", fmt.Errorf("copy: %w", smtp.ErrTooLongLine), 500, smtp.EnhancedCode{5, 4, 0}},
		{"header too large", errHeaderTooLarge, 552, smtp.EnhancedCode{5, 3, 4}},
		{"unknown error is temporary", errors.New("something odd"), 451, smtp.EnhancedCode{4, 3, 0}},
		{"errno is temporary", syscall.EIO, 451, smtp.EnhancedCode{4, 3, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toSMTPError(tt.err, "0abc")
			if got.Code != tt.code || got.EnhancedCode != tt.enh {
				t.Errorf("reply = %d %v %q, want %d %v", got.Code, got.EnhancedCode, got.Message, tt.code, tt.enh)
			}
			if strings.Contains(got.Message, "AADSTS") || strings.Contains(got.Message, "internal detail") {
				t.Errorf("internal error text leaked: %q", got.Message)
			}
			if tt.code != 250 && tt.code != 552 && tt.code != 421 && !strings.Contains(got.Message, "[0abc]") {
				t.Errorf("reply %q lacks the message id", got.Message)
			}
		})
	}
	if got := toSMTPError(busyErr{}, "0abc"); !strings.Contains(got.Message, "try again in 42 seconds") {
		t.Errorf("busy reply %q does not say when to retry", got.Message)
	}
	if got := toSMTPError(nil, "0abc"); got.Message != "queued as 0abc" {
		t.Errorf("success text = %q", got.Message)
	}
}

// A client that connects and closes or resets (a TCP health probe) is a
// debug line; anything else go-smtp reports stays a warning.
func TestClientGoneIsNotAProtocolError(t *testing.T) {
	for _, tc := range []struct {
		detail string
		warn   bool
	}{
		{"error handling 127.0.0.1:41192: read tcp 127.0.0.1:2525->127.0.0.1:41192: read: connection reset by peer", false},
		{"error handling 10.0.0.7:5000: write tcp 10.0.0.1:25->10.0.0.7:5000: write: broken pipe", false},
		{"error handling 10.0.0.7:5000: EOF", false},
		{"error handling 10.0.0.7:5000: tls: first record does not look like a TLS handshake", true},
	} {
		var buf bytes.Buffer
		slogLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}.Printf("%s", tc.detail)
		if got := strings.Contains(buf.String(), "level=WARN"); got != tc.warn {
			t.Errorf("%q logged as %s", tc.detail, buf.String())
		}
	}
}
