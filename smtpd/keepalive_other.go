//go:build !linux

package smtpd

import (
	"net"
	"time"
)

// Elsewhere keep-alive is set on each accepted connection, as Go does by
// default, with the same probes as on Linux (keepalive_linux.go).
func listenConfig() net.ListenConfig {
	return net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{
		Enable:   true,
		Idle:     keepAliveIdleSecs * time.Second,
		Interval: keepAliveIntervalSecs * time.Second,
		Count:    keepAliveCount,
	}}
}
