package floor

import (
	"context"
	"net"
	"syscall"
)

var bg = context.Background()

// listenConfig turns Go's per-connection keep-alive setup off and sets
// SO_KEEPALIVE on the listening socket instead, as graphrelay's smtpd
// does (with the kernel's default probe timings, which cost nothing per
// connection either way).
func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
			}); err != nil {
				return err
			}
			return serr
		},
	}
}
