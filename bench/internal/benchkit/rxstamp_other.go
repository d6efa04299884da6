//go:build !linux

package benchkit

import (
	"net"
	"time"
)

// enableRxTimestamps: kernel receive timestamps are read on Linux only;
// elsewhere every reply is timed by the client's clock.
func enableRxTimestamps(net.Conn) bool { return false }

func rxTimestamp(net.Conn) time.Time { return time.Time{} }
