package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/graphrelay/graphrelay/bench/internal/benchkit"
	"github.com/graphrelay/graphrelay/bench/internal/floor"
)

// FloorResult is one floor server (bench/internal/floor) measured exactly
// as the headline measures graphrelay: the same load, clients, message,
// counters and traced run, against a go-smtp server in a process of its
// own that does the least a relay on graphrelay's stack can do. These are
// figures to compare with, not targets.
type FloorResult struct {
	Server string `json:"server"` // bare or durable
	Does   string `json:"does"`
	HeadlineResult
}

// floorDoes says what each floor server does before its 250.
var floorDoes = map[string]string{
	"bare": "go-smtp; the message is copied to io.Discard",
	"durable": "go-smtp; the message is written (one write) to a new file in tmp/, fsynced, renamed into q/, " +
		"q/ fsynced (group-committed across concurrent messages, q/ held open); the file is unlinked after the 250",
}

// AboveFloor is graphrelay's headline cost minus the durable floor's:
// what graphrelay spends per message beyond the least a durable relay on
// its stack must. SyscallsFrom says which count the syscalls are: perf
// (untraced) when both runs had it, else strace.
type AboveFloor struct {
	CPUPerMsgUs       float64 `json:"daemon_cpu_per_msg_us"`
	SyscallsPerMsg    float64 `json:"syscalls_per_msg"`
	SyscallsFrom      string  `json:"syscalls_from"`
	IOSyscallsPerMsg  float64 `json:"io_syscalls_per_msg"`
	StraceSyscallsMsg float64 `json:"strace_syscalls_per_msg"`
}

// floors builds the floor server and measures each kind in the
// headline's shape.
func floors(e *env, res *Results) error {
	bin, err := benchkit.BuildPackage(e.root, benchkit.FloorPackage, "floorserver")
	if err != nil {
		return err
	}
	for _, kind := range floor.Kinds {
		fr, err := measureFloor(e, bin, kind)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		warnf("  floor %s: %.0f msg/s, DATA→250 p99 %.2f ms (client clock) %.2f ms (kernel arrival), CPU %.0f µs/msg, %.1f syscalls/msg (perf), %.1f read+write calls/msg, %.1f syscalls/msg under strace",
			kind, fr.Load.AcceptedPerSec, fr.Load.DataTo250.P99, fr.Load.DataTo250Kernel.P99, fr.Load.DaemonCPUPerMsgUs,
			fr.SyscallsPerMsg, fr.IOSyscallsPerMsg, fr.Strace.PerMsg)
		res.Floor = append(res.Floor, fr)
	}
	return nil
}

func measureFloor(e *env, bin, kind string) (FloorResult, error) {
	fr := FloorResult{Server: kind, Does: floorDoes[kind]}
	// The durable server's tmp/ and q/ are made in its directory, on the
	// filesystem that holds the daemons' spools.
	dir, err := e.dir("floor-" + kind)
	if err != nil {
		return fr, err
	}
	d, err := benchkit.StartFloor(bin, kind, dir)
	if err != nil {
		return fr, err
	}
	e.mu.Lock()
	e.running[d] = true
	e.mu.Unlock()
	defer e.stop(d)
	if err := warmUp(d, nil); err != nil {
		return fr, err
	}
	h, err := measureCost(e, d, nil, dir, "floor-"+kind)
	if err != nil {
		return fr, err
	}
	fr.HeadlineResult = *h
	return fr, nil
}

// aboveDurableFloor compares the headline with the durable floor, when
// both were measured.
func aboveDurableFloor(r *Results) *AboveFloor {
	h := r.Headline
	var f *FloorResult
	for i := range r.Floor {
		if r.Floor[i].Server == "durable" {
			f = &r.Floor[i]
		}
	}
	if h == nil || f == nil {
		return nil
	}
	a := &AboveFloor{
		CPUPerMsgUs:      h.Load.DaemonCPUPerMsgUs - f.Load.DaemonCPUPerMsgUs,
		IOSyscallsPerMsg: h.IOSyscallsPerMsg - f.IOSyscallsPerMsg,
	}
	if h.Strace.Error == "" && f.Strace.Error == "" {
		a.StraceSyscallsMsg = h.Strace.PerMsg - f.Strace.PerMsg
	}
	switch {
	case h.PerfError == "" && f.PerfError == "":
		a.SyscallsPerMsg, a.SyscallsFrom = h.SyscallsPerMsg-f.SyscallsPerMsg, "perf"
	case h.Strace.Error == "" && f.Strace.Error == "":
		a.SyscallsPerMsg, a.SyscallsFrom = a.StraceSyscallsMsg, "strace"
	}
	return a
}

func printFloors(out io.Writer, r *Results) {
	if len(r.Floor) == 0 {
		return
	}
	fmt.Fprintf(out, "\nFloor: the headline's load against minimal go-smtp servers, each its own process (figures, not targets)\n")
	for _, f := range r.Floor {
		fmt.Fprintf(out, "  %-8s %s\n", f.Server, f.Does)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tCPU/msg\tsyscalls/msg (perf)\tsyscalls/msg (strace)\tread+write/msg\tDATA→250 p50 / p99 client clock\tp50 / p99 kernel arrival\tmsg/s\tother CPU\t")
	row := func(name string, h HeadlineResult, rate float64) {
		perf := "-"
		if h.PerfError == "" {
			perf = fmt.Sprintf("%.1f", h.SyscallsPerMsg)
		}
		strace := "-"
		if h.Strace.Error == "" {
			strace = fmt.Sprintf("%.1f", h.Strace.PerMsg)
		}
		fmt.Fprintf(tw, "%s\t%.0f µs\t%s\t%s\t%.1f\t%s / %s ms\t%s\t%.0f\t%.2f cores\t\n", name, h.Load.DaemonCPUPerMsgUs, perf, strace,
			h.IOSyscallsPerMsg, ms(h.Load.DataTo250.P50), ms(h.Load.DataTo250.P99), kernelDist(h.Load), rate, h.Load.OtherCPUCores)
	}
	if h := r.Headline; h != nil {
		row("graphrelay", *h, h.Load.DeliveredPerSec)
	}
	for _, f := range r.Floor {
		row(f.Server, f.HeadlineResult, f.Load.AcceptedPerSec)
	}
	tw.Flush()
	fmt.Fprintf(out, "msg/s is delivered/s for graphrelay, accepted/s for the floor servers, which deliver nothing.\n")
	for _, f := range r.Floor {
		if f.PerfError != "" {
			fmt.Fprintf(out, "  %s: syscalls not counted untraced: %s\n", f.Server, f.PerfError)
		}
		if f.Strace.Error != "" {
			fmt.Fprintf(out, "  %s: not traced: %s\n", f.Server, f.Strace.Error)
		} else {
			fmt.Fprintf(out, "  %s calls per 100 messages (strace -c -f, %d messages):", f.Server, f.Strace.Messages)
			for _, c := range f.Strace.Top {
				fmt.Fprintf(out, " %s %d", c.Name, c.Calls)
			}
			fmt.Fprintln(out)
		}
	}
}

// kernelDist prints the kernel-arrival p50 / p99, with the replies that
// had no stamp.
func kernelDist(lr LoadResult) string {
	if lr.DataTo250Kernel.N == 0 {
		return "not stamped"
	}
	s := fmt.Sprintf("%s / %s ms", ms(lr.DataTo250Kernel.P50), ms(lr.DataTo250Kernel.P99))
	if lr.KernelFallbacks > 0 {
		s += fmt.Sprintf(" (%d unstamped)", lr.KernelFallbacks)
	}
	return s
}
