package smtpd

import (
	"errors"
	"net/smtp"
	"net/textproto"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/graphrelay/graphrelay/config"
)

// TestReconnectAtPerIPLimit: 20 clients, as many as the default per-IP
// limit, each send one message per connection and reconnect as soon as
// QUIT is answered, 2,000 connections in all. The slot of a connection
// must be free once its 221 is sent, so none of them may see a 421.
func TestReconnectAtPerIPLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections")
	}
	addr, rec := testServer(t, func(c *config.Config) {
		c.SMTP.Listeners[0].TLS = config.TLSNone
		c.SMTP.Listeners[0].MaxConnectionsPerIP = 0 // the default
	})
	const total = 2000
	clients := config.DefaultMaxConnectionsPerIP
	var refused, other atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += clients {
				err := smtp.SendMail(addr, nil, "dev@lan.test", []string{"ops@example.com"},
					[]byte("Subject: reconnect\r\n\r\nmessage\r\n"))
				var te *textproto.Error
				switch {
				case err == nil:
				case errors.As(err, &te) && te.Code == 421:
					refused.Add(1)
				default:
					other.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Errorf("%d of %d connections refused with 421 at or below the per-IP limit", n, total)
	}
	if n := other.Load(); n != 0 {
		t.Errorf("%d connections failed otherwise, first: %v", n, firstErr.Load())
	}
	if got := len(rec.all()); got+int(refused.Load()+other.Load()) != total {
		t.Errorf("%d messages delivered of %d", got, total)
	}
}
