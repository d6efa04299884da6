package smtpd

import (
	"crypto/tls"
	"errors"
	"net"
	"net/smtp"
	"net/textproto"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
)

// TestReconnectAtPerIPLimit: as many clients as the default per-IP limit
// each send one message per connection and reconnect at once: as soon as
// QUIT is answered, or, as many devices do, right after sending QUIT or
// right after the message's 250 without any QUIT. A client never has
// more connections open than the limit, so none of them may be refused,
// however late the server notices that an old connection has ended. Over
// TLS a 421 at connect is written before the handshake, so the client
// sees it as a handshake error; every failure counts.
func TestReconnectAtPerIPLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of connections")
	}
	for _, tc := range []struct {
		name  string
		tls   string
		end   hangUp
		total int
	}{
		{"plain", config.TLSNone, afterReply, 2000},
		{"implicit TLS", config.TLSImplicit, afterReply, 600},
		{"plain, hang up after sending QUIT", config.TLSNone, afterQuit, 1000},
		{"plain, hang up after the 250", config.TLSNone, afterData, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, rec := testServer(t, func(c *config.Config) {
				c.SMTP.Listeners[0].TLS = tc.tls
				c.SMTP.Listeners[0].MaxConnectionsPerIP = 0 // the default
			})
			clients := config.DefaultMaxConnectionsPerIP
			var refused, failed atomic.Int64
			var firstErr atomic.Value
			var wg sync.WaitGroup
			for w := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < tc.total; i += clients {
						err := sendOne(addr, tc.tls == config.TLSImplicit, tc.end)
						var te *textproto.Error
						switch {
						case err == nil:
						case errors.As(err, &te) && te.Code == 421:
							refused.Add(1)
						default:
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err)
						}
					}
				}()
			}
			wg.Wait()
			if n := refused.Load(); n != 0 {
				t.Errorf("%d of %d connections refused with 421 at the per-IP limit", n, tc.total)
			}
			if n := failed.Load(); n != 0 {
				t.Errorf("%d of %d connections failed, first: %v", n, tc.total, firstErr.Load())
			}
			if got := len(rec.all()); got != tc.total-int(refused.Load()+failed.Load()) {
				t.Errorf("%d messages delivered for %d accepted", got, tc.total-int(refused.Load()+failed.Load()))
			}
		})
	}
}

// hangUp is when a client closes its connection after its message.
type hangUp int

const (
	afterReply hangUp = iota // once the 221 is read, as net/smtp does
	afterQuit                // right after sending QUIT
	afterData                // right after the message's 250, with no QUIT
)

// sendOne sends one message on a fresh connection with net/smtp and
// hangs up as end says.
func sendOne(addr string, implicitTLS bool, end hangUp) error {
	var conn net.Conn
	var err error
	if implicitTLS {
		conn, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		conn, err = net.Dial("tcp", addr)
	}
	if err != nil {
		return err
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail("dev@lan.test"); err != nil {
		return err
	}
	if err := c.Rcpt("ops@example.com"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte("Subject: reconnect\r\n\r\nmessage\r\n")); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	switch end {
	case afterQuit:
		_, err := conn.Write([]byte("QUIT\r\n"))
		return err
	case afterData:
		return nil
	}
	return c.Quit()
}

// TestSlotWait: at the per-IP limit a new connection waits for one of the
// client's connections to end instead of being refused at once, and is
// refused with 421 when none ends; beyond the IP's limit of waiting
// connections the refusal is immediate.
func TestSlotWait(t *testing.T) {
	addr, _ := testServer(t, func(c *config.Config) {
		c.SMTP.Listeners[0].MaxConnectionsPerIP = 1
		// b idles through the waiters' grace and must still be there.
		c.SMTP.ReadTimeout = config.Duration(time.Minute)
	})
	a := greeted(t, addr)
	a.ehlo()
	b := dial(t, addr) // waits: no greeting yet
	got := make(chan string, 1)
	go func() { got <- b.reply() }()
	expect(t, a.cmd("QUIT"), "221")
	expect(t, <-got, "220 ")
	expect(t, b.cmd("EHLO client.test"), "250")

	// b holds the only slot now. As many connections as the limit (one)
	// wait and are refused when the grace runs out; the next is refused
	// at once.
	waiters := make([]*client, 1)
	for i := range waiters {
		waiters[i] = dial(t, addr)
	}
	refusedAtOnce := dial(t, addr)
	expect(t, refusedAtOnce.reply(), "421 4.7.0 Too many connections from 127.0.0.1")
	for _, w := range waiters {
		expect(t, w.reply(), "421 4.7.0 Too many connections from 127.0.0.1")
	}
	expect(t, b.cmd("NOOP"), "250")
}
