package graph

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func resp(status int, hdr ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	return &http.Response{StatusCode: status, Header: h}
}

func TestClassifyGraph(t *testing.T) {
	tests := []struct {
		name      string
		resp      *http.Response
		body      string
		class     Class
		retry     time.Duration
		hint      string
		ambiguous bool
		denied    bool
	}{
		{"accepted", resp(202), "", 0, 0, "", false, false},
		{"throttled fractional", resp(429, "Retry-After", "2.128"), `{"error":{"code":"ApplicationThrottled","message":"Application is over its MailboxConcurrency limit."}}`, Transient, 2128 * time.Millisecond, "throttled", false, false},
		{"unavailable", resp(503), `{"error":{"code":"ServiceUnavailable","message":"x"}}`, Transient, 0, "temporary failure", true, false},
		{"gateway timeout", resp(504), ``, Transient, 0, "temporary failure", true, false},
		{"access policy", resp(403), `{"error":{"code":"ErrorAccessDenied","message":"Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."}}`, Permanent, 0, "Application Access Policy", false, true},
		{"no permission", resp(403), `{"error":{"code":"ErrorAccessDenied","message":"Access is denied. Check credentials and try again."}}`, Permanent, 0, "Mail.Send", false, true},
		{"send as", resp(403), `{"error":{"code":"ErrorSendAsDenied","message":"The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account."}}`, Permanent, 0, "Send As", false, true},
		{"unknown user", resp(404), `{"error":{"code":"ErrorInvalidUser","message":"The requested user 'x@y' is invalid."}}`, Permanent, 0, "does not exist", false, false},
		{"no exchange", resp(404), `{"error":{"code":"MailboxNotEnabledForRESTAPI","message":"The mailbox is either inactive, soft-deleted, or is hosted on-premise."}}`, Permanent, 0, "no Exchange Online mailbox", false, false},
		{"expired token", resp(401), `{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired or is not yet valid."}}`, Transient, 0, "refreshed", false, false},
		{"too large", resp(413), `not json`, Permanent, 0, "exceeds", false, false},
		{"bridge bug", resp(400), `{"error":{"code":"InvalidInternetMessageHeaderCollection","message":"Maximum number of headers in one message should be less than or equal to 5."}}`, Permanent, 0, "graphrelay bug", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := classify("sendMail", "alerts@company.com", tt.resp, []byte(tt.body), nil, true)
			if tt.class == 0 {
				if e != nil {
					t.Fatalf("got %v, want success", e)
				}
				return
			}
			if e == nil || e.Class != tt.class || e.RetryAfter != tt.retry || e.Ambiguous != tt.ambiguous || e.AccessDenied() != tt.denied {
				t.Fatalf("got %+v", e)
			}
			if !strings.Contains(e.Hint(), tt.hint) {
				t.Errorf("hint %q lacks %q", e.Hint(), tt.hint)
			}
		})
	}
}

func TestClassifyTransportAndToken(t *testing.T) {
	e := classify("sendMail", "m", nil, nil, &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false)
	if e.Class != Transient || e.Ambiguous {
		t.Errorf("dial failure = %+v", e)
	}
	e = classify("sendMail", "m", nil, nil, context.DeadlineExceeded, true)
	if e.Class != Transient || !e.Ambiguous {
		t.Errorf("timeout after sending must be transient and ambiguous: %+v", e)
	}
	for _, tt := range []struct {
		op   string
		err  error
		sent bool
		want bool
	}{
		{"sendMail", syscall.ECONNRESET, true, true},
		{"send", io.ErrUnexpectedEOF, true, true},
		{"sendMail", errors.New("http2: stream error: stream ID 3; INTERNAL_ERROR"), true, true},
		{"sendMail", syscall.ECONNRESET, false, false},
		{"createMessage", syscall.ECONNRESET, true, false},
		{"upload", io.EOF, true, false},
	} {
		e := classify(tt.op, "m", nil, nil, &url.Error{Op: "Post", URL: "https://graph", Err: tt.err}, tt.sent)
		if e.Class != Transient || e.Ambiguous != tt.want {
			t.Errorf("%s %v sent=%v: ambiguous %v, want %v", tt.op, tt.err, tt.sent, e.Ambiguous, tt.want)
		}
		if tt.want && !strings.Contains(e.Hint(), "Graph may have accepted it") {
			t.Errorf("%s %v: hint %q does not say Graph may have accepted it", tt.op, tt.err, e.Hint())
		}
	}
	body := `{"error":"invalid_client","error_description":"AADSTS700027: Client assertion failed signature validation.\r\nTrace ID: x","error_codes":[700027]}`
	re := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 401, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}, Body: []byte(body)}
	e = classify("sendMail", "m", nil, nil, &urlErr{re}, false)
	if e.Op != "token" || e.Class != Transient || e.Code != "AADSTS700027" || e.Message != "Client assertion failed signature validation." || !strings.Contains(e.Hint(), "Certificates & secrets") {
		t.Errorf("token failure = %+v hint %q", e, e.Hint())
	}
}

type urlErr struct{ err error }

func (u *urlErr) Error() string { return "Post: " + u.err.Error() }
func (u *urlErr) Unwrap() error { return u.err }

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"10":                            10 * time.Second,
		"2.5":                           2500 * time.Millisecond,
		"0":                             0,
		"-3":                            0,
		"soon":                          0,
		"Sun, 22 Nov 2026 10:00:30 GMT": 30 * time.Second,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
