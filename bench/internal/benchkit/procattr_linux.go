package benchkit

import "syscall"

// childAttr makes the kernel kill the daemon if the benchmark dies without
// stopping it (a panic, or a kill from outside), so that no daemon is left
// holding a port and a spool.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
