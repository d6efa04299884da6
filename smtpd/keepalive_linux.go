package smtpd

import (
	"net"
	"syscall"
)

// On Linux an accepted socket is a copy of the listening one, so TCP
// keep-alive switched on once on the listener holds for every connection
// it accepts. Go's default sets it again on each accepted connection:
// four setsockopt calls per connection, most of what a connection costs
// beyond its reads and writes when a device sends one message per
// connection. Dead peers are still found as soon as before: the same
// probes, 15 s idle then every 15 s, 9 unanswered (Go's defaults), and
// the SMTP read and write timeouts besides.

// listenConfig switches keep-alive on for the listening socket and off
// for Go's per-connection setup.
func listenConfig() net.ListenConfig {
	return net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				for _, o := range []struct{ level, opt, v int }{
					{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepAliveIdleSecs},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, keepAliveIntervalSecs},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveCount},
				} {
					if serr == nil {
						serr = syscall.SetsockoptInt(int(fd), o.level, o.opt, o.v)
					}
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}
