//go:build !linux

package floor

import (
	"context"
	"net"
)

var bg = context.Background()

// listenConfig keeps Go's defaults where accepted sockets may not inherit
// the listener's options; the benchmark runs on Linux only.
func listenConfig() *net.ListenConfig { return &net.ListenConfig{} }
