package benchkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PerfSyscalls counts every system call of a running process and its
// threads with "perf stat -e raw_syscalls:sys_enter -p". Unlike strace it
// does not stop the process at each call, so the count is that of the
// process running at full speed: strace slows a Go daemon enough that the
// runtime's scheduler calls (futex, nanosleep) are inflated.
type PerfSyscalls struct {
	cmd  *exec.Cmd
	out  string
	done chan error
}

// StartPerfSyscalls attaches perf to pid, writing its count to outFile.
// It fails where perf is not installed or the kernel's tracepoints are
// not readable (perf_event_paranoid, no root).
func StartPerfSyscalls(pid int, outFile string) (*PerfSyscalls, error) {
	path, err := exec.LookPath("perf")
	if err != nil {
		return nil, errors.New("perf is not installed")
	}
	p := &PerfSyscalls{out: outFile, done: make(chan error, 1)}
	p.cmd = exec.Command(path, "stat", "-e", "raw_syscalls:sys_enter", "-x", ",", "-o", outFile, "-p", strconv.Itoa(pid))
	var stderr strings.Builder
	p.cmd.Stderr = &stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	select {
	case err := <-p.done:
		return nil, fmt.Errorf("perf exited: %v %s", err, strings.TrimSpace(stderr.String()))
	case <-time.After(300 * time.Millisecond):
	}
	return p, nil
}

// Stop detaches perf and returns the number of system calls counted.
func (p *PerfSyscalls) Stop() (int64, error) {
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	b, err := os.ReadFile(p.out)
	if err != nil {
		return 0, err
	}
	// "215426,,raw_syscalls:sys_enter,3852487144,100.00,,"
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Split(line, ",")
		if len(fs) >= 3 && fs[2] == "raw_syscalls:sys_enter" {
			n, err := strconv.ParseInt(fs[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("perf: %q: not counted (%v)", line, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("perf wrote no count to %s", p.out)
}
