package sasllogin

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// These tests drive the mechanism through a real go-smtp server, so they
// prove what a printer sees on the wire, including go-smtp's own handling
// of base64, "*" and the reply codes.

const (
	wireUser = "scanner"
	wirePass = "s3cret"
)

type backend struct {
	mu     sync.Mutex
	authed []string // user names that authenticated, in order
}

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{be: b}, nil }

type session struct {
	be   *backend
	user string
}

func (s *session) AuthMechanisms() []string { return []string{Mechanism} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != Mechanism {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return NewServer(func(username, password string) error {
		if username != wireUser || password != wirePass {
			// Not errors.New: go-smtp would answer a temporary 454.
			return smtp.ErrAuthFailed
		}
		s.user = username
		s.be.mu.Lock()
		s.be.authed = append(s.be.authed, username)
		s.be.mu.Unlock()
		return nil
	}), nil
}

// Mail proves whether AUTH took effect. smtp.ErrAuthRequired is "502 5.7.0"
// in go-smtp v0.25.1.
func (s *session) Mail(string, *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *session) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func startServer(t *testing.T) (string, *backend) {
	t.Helper()
	be := &backend{}
	srv := smtp.NewServer(be)
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true // loopback only; the test has no TLS
	srv.ReadTimeout = 5 * time.Second
	srv.WriteTimeout = 5 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), be
}

// wire is a raw SMTP client that checks every reply line exactly.
type wire struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialWire(t *testing.T, addr string) *wire {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	w := &wire{t: t, c: c, r: bufio.NewReader(c)}
	w.expect("220 ")
	w.send("EHLO printer.local")
	for {
		line := w.line()
		if !strings.HasPrefix(line, "250") {
			t.Fatalf("EHLO: got %q", line)
		}
		if strings.HasPrefix(line, "250 ") {
			break
		}
	}
	return w
}

func (w *wire) send(line string) {
	w.t.Helper()
	if _, err := io.WriteString(w.c, line+"\r\n"); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wire) line() string {
	w.t.Helper()
	l, err := w.r.ReadString('\n')
	if err != nil {
		w.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// expect reads one reply line and checks that it starts with want.
func (w *wire) expect(want string) {
	w.t.Helper()
	if got := w.line(); !strings.HasPrefix(got, want) {
		w.t.Fatalf("got %q, want a line starting with %q", got, want)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestWireExchanges(t *testing.T) {
	addr, be := startServer(t)
	// Each script alternates: a line to send, then the reply it must get.
	tests := []struct {
		name   string
		script []string
	}{
		{"prompted", []string{
			"AUTH LOGIN", "334 VXNlcm5hbWU6",
			b64(wireUser), "334 UGFzc3dvcmQ6",
			b64(wirePass), "235 2.0.0 ",
			"MAIL FROM:<scanner@printer.local>", "250 ",
		}},
		{"initial response", []string{
			"AUTH LOGIN " + b64(wireUser), "334 UGFzc3dvcmQ6",
			b64(wirePass), "235 2.0.0 ",
		}},
		{"lower-case mechanism name", []string{
			"auth login " + b64(wireUser), "334 UGFzc3dvcmQ6",
			b64(wirePass), "235 2.0.0 ",
		}},
		{"trailing NUL and LF tolerated", []string{
			"AUTH LOGIN", "334 VXNlcm5hbWU6",
			b64(wireUser + "\x00"), "334 UGFzc3dvcmQ6",
			b64(wirePass + "\n"), "235 2.0.0 ",
		}},
		{"wrong password", []string{
			"AUTH LOGIN " + b64(wireUser), "334 UGFzc3dvcmQ6",
			b64("guess"), "535 5.7.8 ",
			"MAIL FROM:<scanner@printer.local>", "502 5.7.0 ",
		}},
		{"cancel at the user name, then a good AUTH on the same connection", []string{
			"AUTH LOGIN", "334 VXNlcm5hbWU6",
			"*", "501 5.0.0 ",
			"AUTH LOGIN", "334 VXNlcm5hbWU6",
			b64(wireUser), "334 UGFzc3dvcmQ6",
			b64(wirePass), "235 2.0.0 ",
		}},
		{"cancel at the password", []string{
			"AUTH LOGIN " + b64(wireUser), "334 UGFzc3dvcmQ6",
			"*", "501 5.0.0 ",
			"MAIL FROM:<scanner@printer.local>", "502 5.7.0 ",
		}},
		// go-smtp decodes base64 itself and answers 454 4.7.0; the
		// mechanism never sees these.
		{"bad base64 in the initial response", []string{
			"AUTH LOGIN not*base64", "454 4.7.0 Invalid base64 data",
		}},
		{"bad base64 in a response", []string{
			"AUTH LOGIN", "334 VXNlcm5hbWU6",
			"%%%", "454 4.7.0 Invalid base64 data",
		}},
		{"empty initial response", []string{
			"AUTH LOGIN =", "501 5.5.2 Empty user name",
		}},
		{"empty password line", []string{
			"AUTH LOGIN " + b64(wireUser), "334 UGFzc3dvcmQ6",
			"", "501 5.5.2 Empty password",
		}},
		{"PLAIN response sent to LOGIN", []string{
			"AUTH LOGIN " + b64("\x00"+wireUser+"\x00"+wirePass), "501 5.5.2 Malformed user name",
		}},
		{"over-long user name", []string{
			"AUTH LOGIN " + b64(strings.Repeat("u", MaxFieldLen+1)), "501 5.5.2 User name too long",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := dialWire(t, addr)
			for i := 0; i < len(tt.script); i += 2 {
				w.send(tt.script[i])
				w.expect(tt.script[i+1])
			}
			w.send("QUIT")
			w.expect("221 ")
		})
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	for _, u := range be.authed {
		if u != wireUser {
			t.Errorf("backend saw user %q", u)
		}
	}
}

// go-smtp's own client (like go-sasl's LOGIN client) sends the user name as
// an initial response and expects the challenge to be exactly "Password:".
func TestGoSMTPClient(t *testing.T) {
	addr, be := startServer(t)
	for _, tt := range []struct {
		pass string
		code int
	}{{wirePass, 0}, {"wrong", 535}} {
		c, err := smtp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Auth(sasl.NewLoginClient(wireUser, tt.pass))
		var se *smtp.SMTPError
		switch {
		case tt.code == 0 && err != nil:
			t.Errorf("Auth(%q): %v", tt.pass, err)
		case tt.code != 0 && (!errors.As(err, &se) || se.Code != tt.code):
			t.Errorf("Auth(%q) = %v, want SMTP %d", tt.pass, err, tt.code)
		}
		c.Close()
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.authed) != 1 {
		t.Errorf("%d successful AUTHs, want 1", len(be.authed))
	}
}
