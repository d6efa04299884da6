package benchkit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Options configure one "graphrelay serve" child.
type Options struct {
	Bin    string
	Dir    string // working directory: config, log, and the spool unless SpoolDir is set
	Tenant *Tenant
	// Delivery is delivery.mode: queue (the default here) or direct.
	Delivery string
	SpoolDir string
	// Workers is queue.workers; 0 keeps the daemon's default.
	Workers int
	// MaxConnections is the listener's max_connections and
	// max_connections_per_ip (every benchmark client is 127.0.0.1); 0
	// keeps the defaults.
	MaxConnections int
	// LogFormat is text (the default, as in production) or json.
	LogFormat string
	// Pprof turns admin.pprof on, for a CPU profile of the daemon.
	Pprof bool
}

// Daemon is a running child: "graphrelay serve", or a floor server.
type Daemon struct {
	Addr      string // SMTP listener
	AdminAddr string // /metrics, /healthz, /readyz; "" for a floor server
	LogPath   string
	// Listening is the time from exec to the first accepted TCP connection,
	// Greeted to the first 220 read on it.
	Listening, Greeted time.Duration

	cmd    *exec.Cmd
	logf   *os.File
	exited chan struct{}
	err    error // from Wait, valid once exited is closed
}

// Start writes the configuration, starts the daemon and waits until its
// listener greets a client, at most 20 s.
func Start(o Options) (*Daemon, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(o.Dir, "graphrelay.yaml")
	if err := os.WriteFile(cfgFile, []byte(configYAML(o, addr, admin)), 0o600); err != nil {
		return nil, err
	}
	d := &Daemon{Addr: addr, AdminAddr: admin}
	if err := d.spawn(o.Dir, o.Bin, "serve", "-config", cfgFile); err != nil {
		return nil, err
	}
	return d, nil
}

// StartFloor starts the floor server bin (built from FloorPackage) of the
// given kind, "bare" or "durable", in dir, and waits until it greets a
// client. It has no admin endpoint, so Histogram fails.
func StartFloor(bin, kind, dir string) (*Daemon, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	d := &Daemon{Addr: addr}
	if err := d.spawn(dir, bin, "-kind", kind, "-addr", addr, "-dir", dir); err != nil {
		return nil, err
	}
	return d, nil
}

// spawn runs bin with args in dir, its output appended to dir/daemon.log,
// and waits until d.Addr greets a client, at most 20 s.
func (d *Daemon) spawn(dir, bin string, args ...string) error {
	d.LogPath, d.exited = filepath.Join(dir, "daemon.log"), make(chan struct{})
	var err error
	if d.logf, err = os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return err
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.logf, d.logf
	d.cmd.Dir = dir
	d.cmd.Env = childEnv()
	d.cmd.SysProcAttr = childAttr()
	start := time.Now()
	if err := d.cmd.Start(); err != nil {
		d.logf.Close()
		return err
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	if err := d.waitReady(start); err != nil {
		d.Stop()
		return fmt.Errorf("%w\n%s", err, d.LogTail(8))
	}
	return nil
}

// childEnv is this process's environment without GRAPHRELAY_* variables,
// which would otherwise override the generated configuration.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GRAPHRELAY_") {
			env = append(env, kv)
		}
	}
	return env
}

func configYAML(o Options, addr, admin string) string {
	t := o.Tenant
	delivery := o.Delivery
	if delivery == "" {
		delivery = "queue"
	}
	spool := o.SpoolDir
	if spool == "" {
		spool = filepath.Join(o.Dir, "spool")
	}
	logFormat := o.LogFormat
	if logFormat == "" {
		logFormat = "text"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log:\n  level: info\n  format: %s\n", logFormat)
	fmt.Fprintf(&b, "smtp:\n  hostname: bench.localhost\n  shutdown_timeout: 5s\n  listeners:\n    - name: bench\n      address: %s\n", addr)
	if o.MaxConnections > 0 {
		fmt.Fprintf(&b, "      max_connections: %d\n      max_connections_per_ip: %d\n", o.MaxConnections, o.MaxConnections)
	}
	fmt.Fprintf(&b, "graph:\n  tenant_id: %s\n  client_id: %s\n  authority_url: %s\n  graph_url: %s\n"+
		"  client_secret_file: %s\n  ca_file: %s\n  timeout: 120s\n",
		t.Fake.TenantID(), t.Fake.ClientID(), t.Fake.AuthorityURL(), t.Fake.GraphURL(), t.secretFile, t.caFile)
	b.WriteString("mailboxes:\n")
	for _, m := range t.Mailboxes {
		fmt.Fprintf(&b, "  - address: %s\n", m)
	}
	fmt.Fprintf(&b, "default_mailbox: %s\n", t.Mailboxes[0])
	fmt.Fprintf(&b, "delivery:\n  mode: %s\n", delivery)
	fmt.Fprintf(&b, "queue:\n  dir: %s\n", spool)
	if o.Workers > 0 {
		fmt.Fprintf(&b, "  workers: %d\n", o.Workers)
	}
	// The admin endpoint is part of the daemon's real wiring, and its
	// /metrics give the daemon's own view of latencies.
	fmt.Fprintf(&b, "admin:\n  listen: %s\n", admin)
	if o.Pprof {
		b.WriteString("  pprof: true\n")
	}
	return b.String()
}

// freeAddr picks a free loopback port for one of the daemon's listeners.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls the listener every millisecond, so the start-up time is
// measured to about that precision without taking a CPU from the child.
func (d *Daemon) waitReady(start time.Time) error {
	deadline := start.Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			return fmt.Errorf("the daemon exited during start-up: %v", d.err)
		default:
		}
		c, err := net.DialTimeout("tcp", d.Addr, time.Second)
		if err != nil {
			time.Sleep(time.Millisecond)
			continue
		}
		d.Listening = time.Since(start)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		d.Greeted = time.Since(start)
		c.Close()
		if err != nil || !strings.HasPrefix(string(buf[:n]), "220") {
			return fmt.Errorf("the daemon accepted a connection but did not greet: %q %v", buf[:n], err)
		}
		return nil
	}
	return errors.New("the daemon did not start listening within 20 s")
}

// CPUProfile fetches a CPU profile of the daemon over d seconds from its
// admin endpoint (admin.pprof) into path.
func (d *Daemon) CPUProfile(seconds int, path string) error {
	c := &http.Client{Timeout: time.Duration(seconds+30) * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", d.AdminAddr, seconds))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("daemon CPU profile: HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Pid is the child's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Memory reads the child's VmRSS and VmHWM.
func (d *Daemon) Memory() (Memory, error) { return ReadMemory(d.Pid()) }

// CPU is the child's CPU time so far.
func (d *Daemon) CPU() (time.Duration, error) { return CPUTime(d.Pid()) }

// Stop sends SIGTERM and waits up to 15 s (the configured shutdown
// deadline is 5 s) before killing the child.
func (d *Daemon) Stop() error {
	defer d.logf.Close()
	select {
	case <-d.exited:
		return d.err
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return d.err
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		return errors.New("the daemon did not stop within 15 s of SIGTERM and was killed")
	}
}

// LogTail returns the last n lines of the daemon's log, for error reports.
func (d *Daemon) LogTail(n int) string {
	b, _ := os.ReadFile(d.LogPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "daemon log (last lines):\n  " + strings.Join(lines, "\n  ")
}
