// Package natstest starts real NATS servers (built from the module's own
// github.com/nats-io/nats-server/v2) as processes on 127.0.0.1, forming a
// JetStream cluster, for the cluster backend's tests.
//
// The server binary is built once per version and machine, under
// os.TempDir()/graphrelay-nats-server-<version>, and reused by every later
// test run; the first build takes about 20 seconds of CPU. Builds from
// concurrent test binaries are serialised by an exclusive lock file.
package natstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const serverModule = "github.com/nats-io/nats-server/v2"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of the nats-server binary, building it on first
// use.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = build() })
	if binErr != nil {
		t.Fatalf("natstest: %v", binErr)
	}
	return binPath
}

func build() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", serverModule).Output()
	if err != nil {
		return "", fmt.Errorf("find the nats-server version (go list -m %s): %w", serverModule, err)
	}
	version := strings.TrimSpace(string(out))
	dir := filepath.Join(os.TempDir(), "graphrelay-nats-server-"+version)
	bin := filepath.Join(dir, "nats-server")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another test binary built it while we waited
	}
	tmp := bin + ".tmp"
	if out, err := exec.Command("go", "build", "-o", tmp, serverModule).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", serverModule, err, out)
	}
	return bin, os.Rename(tmp, bin)
}

// Node is one nats-server process.
type Node struct {
	Name       string
	URL        string
	clientPort int
	conf       string
	log        string
	cmd        *exec.Cmd
	done       chan struct{}
}

// Cluster is a set of nats-server processes routed to each other.
type Cluster struct {
	t       testing.TB
	bin     string
	connect []nats.Option
	Nodes   []*Node
}

// Start starts an n-node JetStream cluster (n = 1 is a single server) and
// waits until it has a JetStream meta leader. The processes are killed at
// the end of the test.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartWith(t, n, "")
}

// StartWith is Start with extra configuration for every server, such as
// an authorization block, and the connection options (credentials) that
// the readiness check needs then.
func StartWith(t testing.TB, n int, extra string, connect ...nats.Option) *Cluster {
	t.Helper()
	// The ports are free when picked but taken only when the servers
	// start, so a process of a test running in parallel may take one
	// first; the server that cannot listen exits, and the cluster is
	// started again on new ports.
	for try := 1; ; try++ {
		c, err := startOnce(t, n, extra, connect)
		if err == nil {
			return c
		}
		if try == 3 {
			t.Fatal(err)
		}
		t.Logf("NATS cluster did not start (%v); starting it again on new ports", err)
	}
}

func startOnce(t testing.TB, n int, extra string, connect []nats.Option) (*Cluster, error) {
	t.Helper()
	c := &Cluster{t: t, bin: Binary(t), connect: connect}
	dir := t.TempDir()
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		store := filepath.Join(dir, name, "jetstream")
		conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\n", name, clientPorts[i]) +
			fmt.Sprintf("jetstream {\n  store_dir: %q\n  max_memory_store: 64MB\n  max_file_store: 2GB\n}\n", store)
		conf += extra + "\n"
		if n > 1 {
			conf += fmt.Sprintf("cluster {\n  name: graphrelay\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n",
				routePorts[i], strings.Join(routes, ", "))
		}
		node := &Node{Name: name, URL: fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]), clientPort: clientPorts[i],
			conf: filepath.Join(dir, name+".conf"), log: filepath.Join(dir, name+".log")}
		if err := os.MkdirAll(store, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(node.conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, node)
	}
	for _, node := range c.Nodes {
		c.start(node)
	}
	t.Cleanup(func() {
		for _, node := range c.Nodes {
			c.Kill(node)
		}
	})
	if err := c.waitReady(); err != nil {
		for _, node := range c.Nodes {
			c.Kill(node)
		}
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(node *Node) {
	c.t.Helper()
	logf, err := os.OpenFile(node.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "-c", node.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start nats-server %s: %v", node.Name, err)
	}
	logf.Close()
	node.cmd, node.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(node.done)
}

// URLs returns every node's client URL.
func (c *Cluster) URLs() []string {
	var u []string
	for _, n := range c.Nodes {
		u = append(u, n.URL)
	}
	return u
}

// Kill stops a node with SIGKILL, as a crash would.
func (c *Cluster) Kill(node *Node) {
	if node.cmd == nil {
		return
	}
	node.cmd.Process.Kill() // SIGKILL on Unix
	<-node.done
	node.cmd = nil
}

// Restart starts a killed node again on its ports and storage.
func (c *Cluster) Restart(node *Node) {
	c.t.Helper()
	c.start(node)
}

// WaitReady waits until JetStream answers through every running node.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	if err := c.waitReady(); err != nil {
		c.t.Fatal(err)
	}
}

// waitReady waits until JetStream answers through every running node; it
// gives up at once when a node's process exits.
func (c *Cluster) waitReady() error {
	deadline := time.Now().Add(60 * time.Second)
	for _, node := range c.Nodes {
		if node.cmd == nil {
			continue
		}
		for {
			err := jsReady(node.URL, c.connect)
			if err == nil {
				break
			}
			for _, other := range c.Nodes {
				if other.cmd == nil {
					continue
				}
				select {
				case <-other.done:
					return fmt.Errorf("nats-server %s exited; log:\n%s", other.Name, other.Log())
				default:
				}
			}
			if time.Now().After(deadline) {
				var logs strings.Builder
				for _, n := range c.Nodes {
					fmt.Fprintf(&logs, "\n%s log:\n%s", n.Name, n.Log())
				}
				return fmt.Errorf("nats-server %s has no JetStream: %v%s", node.Name, err, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func jsReady(url string, opts []nats.Option) error {
	nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(time.Second)}, opts...)...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// Log returns the tail of a node's log, for failure messages.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.log)
	return tail(string(b), 20)
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// Pid is the node's process id, 0 while it is stopped: benchmarks read
// the server's CPU time from it.
func (n *Node) Pid() int {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}
