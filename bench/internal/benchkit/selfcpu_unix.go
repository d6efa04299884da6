//go:build unix

package benchkit

import (
	"syscall"
	"time"
)

// SelfCPUTime returns this process's user plus system CPU time.
func SelfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
