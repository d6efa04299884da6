package smtpd

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/policy"
)

// pipeListener hands out the server ends of net.Pipe connections, each
// looking like a loopback TCP client so the access checks admit it.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }

type loopbackPipe struct{ net.Conn }

func (loopbackPipe) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)

// FuzzSession feeds random command streams to a whole SMTP session over
// net.Pipe. go-smtp turns a panic in our session code into "421 4.0.0
// Internal server error", so the target fails on that reply, on any
// malformed reply line, and on a session that does not end after QUIT.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"EHLO a\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n",
		"HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n\r\n.\r\n",
		"EHLO a\r\nMAIL FROM:<a@example.com> SIZE=100 BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<b@[127.0.0.1]>\r\nBDAT 5 LAST\r\nhello",
		"EHLO a\r\nAUTH PLAIN AGEAYg==\r\nAUTH LOGIN\r\n*\r\nSTARTTLS\r\n",
		"EHLO a\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nFrom: =?utf-8?q?x@y?= <a@b>\r\n\r\n\n.\n\r.\r\r\n.\r\n",
		"EHLO a\r\nRSET\r\nNOOP\r\nVRFY x\r\nHELP\r\nXYZZY\r\n",
		"EHLO a\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<relay%x@example.com>\r\nRCPT TO:<@a:b@c>\r\n",
		"\x00\xff\r\nEHLO \x00\r\nMAIL FROM:<\xff@\xfe>\r\n",
	} {
		f.Add([]byte(seed))
	}
	cfg := config.Default()
	cfg.SMTP.Listeners = []config.Listener{{Name: "fuzz", Address: "127.0.0.1:0"}}
	cfg.SMTP.ReadTimeout = config.Duration(2 * time.Second)
	cfg.SMTP.MaxMessageBytes = 64 << 10
	cfg.Rules = []config.Rule{{Name: "all", Mailbox: "relay@example.com", From: "rewrite", Recipients: []string{"*"}}}
	if errs := config.Validate(cfg); len(errs) > 0 {
		f.Fatal(errs)
	}
	pol, _, err := policy.New(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	srv := New(Options{SMTP: cfg.SMTP, Auth: cfg.Auth, Hostname: "fuzz.test", Deliverer: &recorder{}, Policy: pol,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	pl := &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	nets, _ := config.ParseNetwork("127.0.0.0/8")
	ls := &listenerServer{cfg: cfg.SMTP.Listeners[0]}
	ls.ln = newAccessListener(pl, ls.cfg, nil, nil, srv.log)
	ls.ln.nets = append(ls.ln.nets, nets)
	ls.srv = srv.newSMTPServer(ls)
	go ls.srv.Serve(ls.ln)
	f.Cleanup(func() { ls.srv.Close() })

	f.Fuzz(func(t *testing.T, input []byte) {
		server, client := net.Pipe()
		pl.conns <- loopbackPipe{server}
		defer client.Close()
		client.SetDeadline(time.Now().Add(10 * time.Second))
		var out strings.Builder
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(client)
			sc.Buffer(make([]byte, 64<<10), 64<<10)
			for sc.Scan() {
				out.WriteString(sc.Text() + "\n")
			}
		}()
		// Writes may fail once the server has closed; that is an outcome,
		// not an error.
		client.Write(input)
		client.Write([]byte("\r\n.\r\nRSET\r\nQUIT\r\n"))
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("session did not end after QUIT")
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if strings.Contains(line, "Internal server error") {
				t.Fatalf("a panic was recovered by go-smtp: %q", line)
			}
			if line != "" && !replyLine.MatchString(line) {
				t.Fatalf("malformed reply line %q", line)
			}
		}
	})
}
