package sasllogin

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

var errNope = errors.New("nope")

// recorder is an authenticate callback that remembers what it was given.
type recorder struct {
	calls              int
	username, password string
}

func (r *recorder) auth(username, password string) error {
	r.calls++
	r.username, r.password = username, password
	if username == "scanner" && password == "s3cret pass" {
		return nil
	}
	return errNope
}

// step is one call to Next: the response given (nil means "no initial
// response") and what must come back.
type step struct {
	response  []byte
	challenge string
	done      bool
	err       error
}

func TestExchanges(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	long := strings.Repeat("x", MaxFieldLen+1)
	max := strings.Repeat("x", MaxFieldLen)
	tests := []struct {
		name     string
		steps    []step
		wantUser string // checked when the callback ran
		wantPass string
		calls    int
	}{
		{"prompted", []step{
			{nil, "Username:", false, nil},
			{b("scanner"), "Password:", false, nil},
			{b("s3cret pass"), "", true, nil},
		}, "scanner", "s3cret pass", 1},
		{"initial response is the user name", []step{
			{b("scanner"), "Password:", false, nil},
			{b("s3cret pass"), "", true, nil},
		}, "scanner", "s3cret pass", 1},
		{"wrong password passes the callback's error through unwrapped", []step{
			{b("scanner"), "Password:", false, nil},
			{b("wrong"), "", false, errNope},
		}, "scanner", "wrong", 1},
		{"trailing NUL on both fields", []step{
			{nil, "Username:", false, nil},
			{b("scanner\x00"), "Password:", false, nil},
			{b("s3cret pass\x00"), "", true, nil},
		}, "scanner", "s3cret pass", 1},
		{"trailing LF and CRLF", []step{
			{b("scanner\n"), "Password:", false, nil},
			{b("s3cret pass\r\n"), "", true, nil},
		}, "scanner", "s3cret pass", 1},
		{"trailing CR", []step{
			{b("scanner\r"), "Password:", false, nil},
			{b("s3cret pass\r"), "", true, nil},
		}, "scanner", "s3cret pass", 1},
		{"only one terminator is removed", []step{
			{b("scanner"), "Password:", false, nil},
			{b("s3cret pass\x00\x00"), "", false, ErrBadPassword},
		}, "", "", 0},
		{"spaces are kept, so a padded password is wrong", []step{
			{b("scanner"), "Password:", false, nil},
			{b("s3cret pass "), "", false, errNope},
		}, "scanner", "s3cret pass ", 1},
		{"PLAIN-style response sent to LOGIN is refused", []step{
			{b("\x00scanner\x00s3cret pass"), "", false, ErrBadUsername},
		}, "", "", 0},
		{"NUL inside the password is refused", []step{
			{b("scanner"), "Password:", false, nil},
			{b("s3cret\x00pass"), "", false, ErrBadPassword},
		}, "", "", 0},
		{"LF inside the user name is refused", []step{
			{nil, "Username:", false, nil},
			{b("scan\nner"), "", false, ErrBadUsername},
		}, "", "", 0},
		{"empty initial response (AUTH LOGIN =)", []step{
			{b(""), "", false, ErrEmptyUsername},
		}, "", "", 0},
		{"empty prompted user name", []step{
			{nil, "Username:", false, nil},
			{b(""), "", false, ErrEmptyUsername},
		}, "", "", 0},
		{"user name that is only a terminator", []step{
			{b("\x00"), "", false, ErrEmptyUsername},
		}, "", "", 0},
		{"empty password", []step{
			{b("scanner"), "Password:", false, nil},
			{b("\r\n"), "", false, ErrEmptyPassword},
		}, "", "", 0},
		{"over-long user name", []step{
			{b(long), "", false, ErrLongUsername},
		}, "", "", 0},
		{"over-long password", []step{
			{b("scanner"), "Password:", false, nil},
			{b(long), "", false, ErrLongPassword},
		}, "", "", 0},
		{"maximum length plus terminator is accepted", []step{
			{b(max + "\r\n"), "Password:", false, nil},
			{b(max + "\x00"), "", false, errNope},
		}, max, max, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			s := NewServer(rec.auth)
			for i, st := range tt.steps {
				ch, done, err := s.Next(st.response)
				if string(ch) != st.challenge || done != st.done || err != st.err {
					t.Fatalf("step %d: Next(%q) = %q, %v, %v; want %q, %v, %v",
						i, st.response, ch, done, err, st.challenge, st.done, st.err)
				}
			}
			if rec.calls != tt.calls {
				t.Fatalf("authenticate called %d times, want %d", rec.calls, tt.calls)
			}
			if tt.calls > 0 && (rec.username != tt.wantUser || rec.password != tt.wantPass) {
				t.Errorf("authenticate(%q, %q), want (%q, %q)", rec.username, rec.password, tt.wantUser, tt.wantPass)
			}
		})
	}
}

// After the exchange ends, in success or failure, a further response is a
// protocol error and never reaches the callback again.
func TestNoResponseAfterEnd(t *testing.T) {
	for _, pass := range []string{"s3cret pass", "wrong"} {
		var rec recorder
		s := NewServer(rec.auth)
		s.Next([]byte("scanner"))
		s.Next([]byte(pass))
		if _, done, err := s.Next([]byte("again")); done || err != ErrUnexpectedInput {
			t.Errorf("after %q: Next = done %v, err %v; want ErrUnexpectedInput", pass, done, err)
		}
		if rec.calls != 1 {
			t.Errorf("after %q: authenticate called %d times, want 1", pass, rec.calls)
		}
	}
}

// The malformed-input errors must reach go-smtp as 501 5.5.2, a permanent
// syntax reply, not go-smtp's temporary 454 fallback.
func TestErrorsAreSyntaxReplies(t *testing.T) {
	for _, e := range []*smtp.SMTPError{ErrEmptyUsername, ErrEmptyPassword, ErrLongUsername, ErrLongPassword, ErrBadUsername, ErrBadPassword, ErrUnexpectedInput} {
		if e.Code != 501 || e.EnhancedCode != (smtp.EnhancedCode{5, 5, 2}) {
			t.Errorf("%v: code %d %v, want 501 5.5.2", e, e.Code, e.EnhancedCode)
		}
	}
}
