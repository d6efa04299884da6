package benchkit

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is a process's resident memory in KiB: the current VmRSS and its
// high-water mark VmHWM (peak RSS since the process started).
type Memory struct{ RSS, HWM int64 }

// RSSMiB and HWMMiB convert to MiB (2^20 bytes).
func (m Memory) RSSMiB() float64 { return float64(m.RSS) / 1024 }
func (m Memory) HWMMiB() float64 { return float64(m.HWM) / 1024 }

// ReadMemory reads /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read process memory (Linux only): %w", err)
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = n
		case "VmHWM":
			m.HWM = n
		}
	}
	return m, sc.Err()
}

// userHZ is the unit of the times in /proc/<pid>/stat. It is part of the
// kernel's user-space ABI and 100 on every Linux architecture Go supports.
const userHZ = 100

// CPUTime returns the user plus system CPU time pid has used so far, at
// 10 ms resolution, which is plenty over the thousands of messages a
// throughput run sends.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after the last ')' are fixed.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// SystemCPU returns the CPU time all processes and the kernel have spent
// busy (user, nice, system, irq, softirq) since boot, summed over CPUs.
// Comparing its growth with the daemon's and the benchmark's own shows how
// much of the machine something else took during a run.
func SystemCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat")
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected /proc/stat: %w", err)
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / userHZ, nil
}

// AvailableCPU spins one goroutine per CPU for d and returns the share of
// the machine's CPU time they got: about 1 on an idle machine, less when
// other processes (or other cgroups, which nice does not reach) compete.
func AvailableCPU(d time.Duration) float64 {
	n := runtime.NumCPU()
	start := SelfCPUTime()
	wall := time.Now()
	deadline := wall.Add(d)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for time.Now().Before(deadline) {
				for i := 0; i < 1000; i++ {
					x += i
				}
			}
			spinSink.Add(int64(x))
		}()
	}
	wg.Wait()
	return float64(SelfCPUTime()-start) / float64(time.Since(wall)) / float64(n)
}

// spinSink keeps the compiler from removing AvailableCPU's loop.
var spinSink atomic.Int64

// IOSyscalls returns the read and write system calls pid has made so far
// (syscr and syscw in /proc/<pid>/io: read, write and their vectored,
// positioned and socket forms). Other calls (fsync, open, rename, epoll,
// futex) are not counted; StraceCounts sees every call.
func IOSyscalls(pid int) (reads, writes int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes, nil
}

// LoadAverage returns the first line of /proc/loadavg: the machine's 1, 5
// and 15 minute load averages, for reports.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
