package benchkit

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Strace counts the system calls of a running process and all its
// threads with "strace -c -f -p". Tracing slows the process several
// times over, so rates measured meanwhile mean nothing; the counts per
// message do.
type Strace struct {
	cmd  *exec.Cmd
	out  string
	done chan error
}

// StartStrace attaches strace to pid, writing its summary to outFile.
func StartStrace(pid int, outFile string) (*Strace, error) {
	path, err := exec.LookPath("strace")
	if err != nil {
		return nil, errors.New("strace is not installed")
	}
	s := &Strace{out: outFile, done: make(chan error, 1)}
	s.cmd = exec.Command(path, "-c", "-f", "-q", "-o", outFile, "-p", strconv.Itoa(pid))
	var stderr strings.Builder
	s.cmd.Stderr = &stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.done <- s.cmd.Wait() }()
	// strace attaches to every thread before it traces; give it a moment,
	// and notice if it could not (ptrace refused in a container).
	select {
	case err := <-s.done:
		return nil, fmt.Errorf("strace exited: %v %s", err, strings.TrimSpace(stderr.String()))
	case <-time.After(500 * time.Millisecond):
	}
	return s, nil
}

// SyscallCount is one line of strace's summary.
type SyscallCount struct {
	Name  string `json:"name"`
	Calls int64  `json:"calls"`
}

// Stop detaches strace and returns its counts, most frequent first.
func (s *Strace) Stop() ([]SyscallCount, error) {
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	f, err := os.Open(s.out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// "% time     seconds  usecs/call     calls    errors syscall"; the
	// errors column is empty when there were none.
	var out []SyscallCount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 || fs[0] == "%" || strings.HasPrefix(fs[0], "-") {
			continue
		}
		name := fs[len(fs)-1]
		if name == "total" {
			continue
		}
		calls, err := strconv.ParseInt(fs[3], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, SyscallCount{Name: name, Calls: calls})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Calls > out[j].Calls })
	if len(out) == 0 {
		return nil, fmt.Errorf("strace wrote no counts to %s", s.out)
	}
	return out, sc.Err()
}
