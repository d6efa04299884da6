package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/graphrelay/graphrelay/bench/internal/benchkit"
)

// env is what every measurement shares: the binary, the scratch root, the
// two fakes (instant and with latency) and the daemons now running, which
// an interrupt must stop.
type env struct {
	o       options
	bin     string
	root    string
	instant *benchkit.Tenant
	slow    *benchkit.Tenant

	mu      sync.Mutex
	running map[*benchkit.Daemon]bool
	seq     int
}

// dir makes a fresh directory for one daemon under the scratch root (or
// under -spool-dir, whose filesystem then holds the spool).
func (e *env) dir(name string) (string, error) {
	e.mu.Lock()
	e.seq++
	n := e.seq
	e.mu.Unlock()
	d := filepath.Join(e.root, fmt.Sprintf("%02d-%s", n, name))
	return d, os.MkdirAll(d, 0o755)
}

// start runs a daemon in dir against t with the benchmark's settings:
// queue mode, the configured workers, and listener limits raised for
// 1,000 connections from one IP.
func (e *env) start(dir string, t *benchkit.Tenant) (*benchkit.Daemon, error) {
	d, err := benchkit.Start(benchkit.Options{Bin: e.bin, Dir: dir, Tenant: t, Delivery: "queue",
		Workers: e.o.workers, MaxConnections: 2 * e.o.connections})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.running[d] = true
	e.mu.Unlock()
	return d, nil
}

func (e *env) stop(d *benchkit.Daemon) {
	if err := d.Stop(); err != nil {
		warnf("daemon stop: %v", err)
	}
	e.mu.Lock()
	delete(e.running, d)
	e.mu.Unlock()
}

// stopAll stops whatever is still running, on an interrupt or an error.
func (e *env) stopAll() {
	e.mu.Lock()
	ds := make([]*benchkit.Daemon, 0, len(e.running))
	for d := range e.running {
		ds = append(ds, d)
	}
	e.mu.Unlock()
	for _, d := range ds {
		e.stop(d)
	}
}

func warnf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+" bench: "+format+"\n", args...)
}
