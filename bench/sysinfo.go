package main

import (
	"bufio"
	"os"
	"runtime"
	"strings"
)

// Environment names what was measured, so that figures from different
// machines or builds are not compared by mistake.
type Environment struct {
	Daemon   string `json:"daemon_version"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	// CPUAvailable is the share of the machine's CPU this process could
	// get at the start, spinning on every CPU for half a second: below 1
	// when something else is running, and then every figure is pessimistic.
	CPUAvailable float64 `json:"cpu_available"`
	Kernel       string  `json:"kernel"`
	SpoolFS      string  `json:"spool_filesystem"`
	SpoolDir     string  `json:"spool_dir"`
	StartedUTC   string  `json:"started_utc"`
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return "Linux " + strings.TrimSpace(string(b))
}
