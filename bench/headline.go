package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/graphrelay/graphrelay/bench/internal/benchkit"
)

// HeadlineResult is the admin's common shape, the one issue 15 judges:
// one mailbox, the daemon's default settings, 16 clients each sending one
// 4 KB message per connection, against a Graph that answers at once. On
// a shared machine rates vary twofold from run to run; cost per message
// (CPU and system calls) does not, so those are the figures to compare.
type HeadlineResult struct {
	Load LoadResult `json:"load"`
	// IOSyscallsPerMsg is the daemon's read and write calls per accepted
	// message during the load (/proc/<pid>/io syscr + syscw).
	IOSyscallsPerMsg float64 `json:"io_syscalls_per_msg"`
	// SyscallsPerMsg is every system call of the daemon per accepted
	// message during the same, untraced load, counted by perf (the
	// raw_syscalls:sys_enter tracepoint); PerfError says why it is
	// missing. This is the figure the ≤ 25 target is judged on: strace
	// stops the daemon at every call, which inflates the Go runtime's
	// own calls (futex, nanosleep) that a daemon at full speed makes
	// fewer of.
	SyscallsPerMsg float64 `json:"syscalls_per_msg"`
	PerfError      string  `json:"perf_error,omitempty"`
	// LoadAvg is the machine's load average when the run ended.
	LoadAvg string `json:"loadavg"`
	// Strace counts every system call of a second, traced run.
	Strace StraceResult `json:"strace"`
}

// StraceResult is the traced run: every system call of the daemon's
// threads, per message delivered.
type StraceResult struct {
	Messages int                     `json:"messages"`
	PerMsg   float64                 `json:"syscalls_per_msg"`
	Top      []benchkit.SyscallCount `json:"top"` // calls per 100 messages
	Error    string                  `json:"error,omitempty"`
}

// straceMessages is the traced run's length: enough for stable counts,
// few enough that the slowed daemon finishes in seconds.
const straceMessages = 400

func headline(e *env, res *Results) error {
	dir, err := e.dir("headline")
	if err != nil {
		return err
	}
	t, err := benchkit.StartTenant(dir, []string{"printer@company.com"}, 0)
	if err != nil {
		return err
	}
	defer t.Close()
	d, err := benchkit.Start(benchkit.Options{Bin: e.bin, Dir: dir, Tenant: t, Delivery: "queue", Pprof: e.o.daemonProf != ""})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.running[d] = true
	e.mu.Unlock()
	defer e.stop(d)
	if err := warmUp(d, t); err != nil {
		return err
	}
	profDone := make(chan error, 1)
	if e.o.daemonProf != "" {
		secs := max(1, int(e.o.duration.Seconds()))
		go func() { profDone <- d.CPUProfile(secs, e.o.daemonProf) }()
	} else {
		profDone <- nil
	}
	h, err := measureCost(e, d, t, dir, "headline")
	if err != nil {
		return err
	}
	if err := <-profDone; err != nil {
		warnf("daemon CPU profile: %v", err)
	}
	warnf("  headline: %.0f delivered/s, DATA→250 p99 %.2f ms (client clock) %.2f ms (kernel arrival), daemon CPU %.0f µs/msg, %.1f syscalls/msg (perf), %.1f read+write calls/msg, %.1f syscalls/msg under strace",
		h.Load.DeliveredPerSec, h.Load.DataTo250.P99, h.Load.DataTo250Kernel.P99, h.Load.DaemonCPUPerMsgUs, h.SyscallsPerMsg, h.IOSyscallsPerMsg, h.Strace.PerMsg)
	res.Headline = h
	return nil
}

// measureCost runs the headline's load (16 clients, one message per
// connection, -duration long) against d, which t receives deliveries
// for (nil: a floor server, which delivers nothing), counting d's system
// calls with perf and /proc/PID/io meanwhile; then the traced run.
func measureCost(e *env, d *benchkit.Daemon, t *benchkit.Tenant, dir, tag string) (*HeadlineResult, error) {
	h := &HeadlineResult{}
	perf, perfErr := benchkit.StartPerfSyscalls(d.Pid(), filepath.Join(dir, "perf.txt"))
	r0, w0, ioErr := benchkit.IOSyscalls(d.Pid())
	r := &loadRun{d: d, t: t, tag: tag, spec: loadSpec{clients: 16, perMessage: true},
		duration: e.o.duration, drain: e.o.drain, batch: 1, maxMessages: int64(e.o.maxMessages)}
	var err error
	h.Load, err = r.run()
	if perfErr == nil {
		n, err := perf.Stop()
		switch {
		case err != nil:
			h.PerfError = err.Error()
		case h.Load.Accepted > 0:
			h.SyscallsPerMsg = float64(n) / float64(h.Load.Accepted)
		}
	} else {
		h.PerfError = perfErr.Error()
	}
	if err != nil {
		return nil, err
	}
	if r1, w1, err := benchkit.IOSyscalls(d.Pid()); err == nil && ioErr == nil && h.Load.Accepted > 0 {
		h.IOSyscallsPerMsg = float64(r1-r0+w1-w0) / float64(h.Load.Accepted)
	}
	h.LoadAvg = benchkit.LoadAverage()
	h.Strace = traced(e, d, t, filepath.Join(dir, "strace.txt"))
	return h, nil
}

// traced repeats the headline load for straceMessages messages with
// strace attached, and counts the calls per delivered message (per
// accepted message for a floor server, t nil, which delivers none).
func traced(e *env, d *benchkit.Daemon, t *benchkit.Tenant, out string) StraceResult {
	var sr StraceResult
	s, err := benchkit.StartStrace(d.Pid(), out)
	if err != nil {
		sr.Error = err.Error()
		return sr
	}
	r := &loadRun{d: d, t: t, tag: "strace", spec: loadSpec{clients: 16, perMessage: true},
		duration: time.Minute, drain: e.o.drain, batch: 1, maxMessages: straceMessages}
	lr, err := r.run()
	counts, serr := s.Stop()
	os.Remove(out)
	switch {
	case err != nil:
		sr.Error = err.Error()
	case serr != nil:
		sr.Error = serr.Error()
	}
	done := lr.Delivered
	if t == nil {
		done = lr.Accepted
	}
	if sr.Error == "" && done == 0 {
		sr.Error = "nothing delivered under strace"
	}
	if sr.Error != "" {
		return sr
	}
	sr.Messages = done
	var total int64
	for _, c := range counts {
		total += c.Calls
	}
	sr.PerMsg = float64(total) / float64(done)
	for _, c := range counts {
		per100 := c.Calls * 100 / int64(done)
		if len(sr.Top) == 16 || per100 == 0 {
			break // most frequent first: the rest are rarer still
		}
		sr.Top = append(sr.Top, benchkit.SyscallCount{Name: c.Name, Calls: per100})
	}
	return sr
}

func printHeadline(out io.Writer, h *HeadlineResult, above *AboveFloor) {
	if h == nil {
		return
	}
	lr := h.Load
	fmt.Fprintf(out, "\nHeadline: one mailbox, default settings, 16 clients, one 4 KB message per connection, instant Graph\n")
	fmt.Fprintf(out, "  daemon CPU per message   %.0f µs\n", lr.DaemonCPUPerMsgUs)
	if h.PerfError == "" {
		fmt.Fprintf(out, "  syscalls per message     %.1f (perf stat raw_syscalls:sys_enter, untraced run)\n", h.SyscallsPerMsg)
	} else {
		fmt.Fprintf(out, "  syscalls per message     not counted untraced: %s\n", h.PerfError)
	}
	if h.Strace.Error == "" {
		fmt.Fprintf(out, "  syscalls/msg, traced     %.1f (strace -c -f, %d messages; strace inflates futex and nanosleep)\n", h.Strace.PerMsg, h.Strace.Messages)
	} else {
		fmt.Fprintf(out, "  syscalls per message     not measured: %s\n", h.Strace.Error)
	}
	fmt.Fprintf(out, "  read+write calls/msg     %.1f (/proc/PID/io syscr+syscw, untraced run)\n", h.IOSyscallsPerMsg)
	fmt.Fprintf(out, "  DATA→250 p50 / p99 / max %s ms (client clock: just before the final dot's write → reply read)\n", dist(lr.DataTo250))
	if k := lr.DataTo250Kernel; k.N > 0 {
		fmt.Fprintf(out, "  DATA→250 p50 / p99 / max %s ms (kernel arrival: the same start → the reply reached the client's socket)\n", dist(k))
	} else {
		fmt.Fprintf(out, "  DATA→250, kernel arrival not stamped\n")
	}
	if lr.KernelFallbacks > 0 && lr.DataTo250Kernel.N > 0 {
		fmt.Fprintf(out, "                           %d of %d replies had no kernel stamp and are only in the client clock's figure\n", lr.KernelFallbacks, lr.Accepted)
	}
	if lr.DaemonWithin10ms >= 0 {
		// The client's clock includes its own wait for a CPU; the
		// daemon's histogram starts once it has read the final dot.
		fmt.Fprintf(out, "  250 within 10 ms         %.2f%% by the daemon's own histogram\n", 100*lr.DaemonWithin10ms)
	}
	fmt.Fprintf(out, "  delivered/s              %.0f (%d accepted, %d undelivered, %d refused, %d failed)\n",
		lr.DeliveredPerSec, lr.Accepted, lr.Undelivered, lr.Refused, lr.Failed)
	// One mailbox allows 4 Graph requests at a time, so delivery can trail
	// acceptance; the queue then grows, and each message beyond the spare
	// files costs a file creation.
	fmt.Fprintf(out, "  accepted/s               %.0f; 250 → delivered p50 / p99 %.0f / %.0f ms\n",
		lr.AcceptedPerSec, lr.ToDelivered.P50, lr.ToDelivered.P99)
	fmt.Fprintf(out, "  other load               %.2f cores used by other processes during the run; loadavg %s\n", lr.OtherCPUCores, h.LoadAvg)
	if above != nil {
		syscalls := "syscalls not counted"
		if above.SyscallsFrom != "" {
			syscalls = fmt.Sprintf("%+.1f syscalls per message (%s)", above.SyscallsPerMsg, above.SyscallsFrom)
		}
		fmt.Fprintf(out, "  graphrelay above the durable floor: %+.0f µs CPU, %s; %+.1f read+write calls\n",
			above.CPUPerMsgUs, syscalls, above.IOSyscallsPerMsg)
	}
	if len(h.Strace.Top) > 0 {
		fmt.Fprintf(out, "  calls per 100 messages  ")
		for _, c := range h.Strace.Top {
			fmt.Fprintf(out, " %s %d", c.Name, c.Calls)
		}
		fmt.Fprintln(out)
	}
}
