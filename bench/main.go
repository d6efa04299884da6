// Command bench is graphrelay's one benchmark command:
//
//	go run ./bench                 # about 2 minutes on a 2-core machine
//	go run ./bench -quick          # about 30 seconds, shorter runs
//	go run ./bench -bin OLD -json old.json   # an older build, to compare
//	go run ./bench -steps headline,floor     # only some measurements
//
// It builds the daemon and runs "graphrelay serve" as a child process, so
// that memory and CPU figures are the daemon's alone, against the in-repo
// fake Graph (graph/graphtest) on loopback in this process, once answering
// at once and once with added latency (-latency, 150 ms by default, about
// real Graph). Every client is on loopback and every step is bounded in
// count and time. It measures:
//
//   - the headline, the admin's common shape: one mailbox, the daemon's
//     default settings, 16 clients each sending one 4 KB message per
//     connection: daemon CPU per message (/proc/PID/stat), system calls
//     per message (counted by perf stat on the untraced run, where perf
//     is installed and allowed; by strace -c -f on a second, traced run
//     of 400 messages, which also names them; and read/write calls from
//     /proc/PID/io on the untraced run),
//     DATA→250 p50/p99, delivered/s, and the machine's other load. On a
//     shared machine rates vary twofold; cost per message does not;
//   - the floor: the same load, measured the same way, against two
//     minimal go-smtp servers, each its own process (bench/internal/floor):
//     "bare" discards every message, "durable" fsyncs each into a file of
//     its own before the 250; and graphrelay's cost above the durable one;
//   - messages per second accepted and delivered (the fake's 202), 4 KB
//     messages, durable spool, 1, 16 and 64 concurrent clients on
//     persistent connections, and 16 clients with one connection per
//     message;
//   - p50, p99 and max from the end of DATA to the 250, and from the 250
//     to the delivery (the fake's clock and ours are the same machine's).
//     The end of DATA is the client's clock just before the write of the
//     final dot; the 250 is timed twice: by the client's clock once read,
//     and by the kernel's stamp of its arrival at the client's socket
//     (SO_TIMESTAMPNS), which leaves out the clients' own waits for a CPU;
//   - peak RSS (VmHWM) relaying 1, 10 and 30 MB messages, and the time
//     from their last byte to the 250;
//   - idle RSS, and RSS holding 1,000 idle connections;
//   - cold start, exec to the listener accepting;
//   - with 10,000 messages spooled, exec to the first 220 and the time
//     the daemon takes to read them, over three restarts.
//
// It prints a table with the targets of issues 5, 7 and 15 marked MET or
// MISSED, and writes the same as JSON (-json, bench-results.json by
// default). Linux only: it reads /proc.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/graphrelay/graphrelay/bench/internal/benchkit"
)

type options struct {
	quick       bool
	duration    time.Duration
	drain       time.Duration
	latency     time.Duration
	mailboxes   int
	workers     int
	batch       int
	maxMessages int
	connections int
	starts      int
	sizes       []int
	bin         string
	spoolDir    string
	jsonFile    string
	keep        bool
	cpuProfile  string
	daemonProf  string
	timeout     time.Duration
	steps       map[string]bool
}

func parseFlags() options {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "short runs (about 30 s in all) for a quick check; figures are noisier")
	flag.DurationVar(&o.duration, "duration", 6*time.Second, "length of each throughput run (-quick: 1.5s)")
	flag.DurationVar(&o.drain, "drain", 30*time.Second, "longest wait after a run for the remaining deliveries (-quick: 10s)")
	flag.DurationVar(&o.latency, "latency", 150*time.Millisecond, "latency the slow fake adds to every Graph request")
	flag.IntVar(&o.mailboxes, "mailboxes", 16, "mailboxes the messages are spread over (4 concurrent Graph requests each)")
	flag.IntVar(&o.workers, "workers", 0, "queue.workers of the daemon; 0 keeps its default (the sum of the mailboxes' max_concurrency, at least 16)")
	flag.IntVar(&o.batch, "batch", 50, "transactions per persistent connection before the client reconnects")
	flag.IntVar(&o.maxMessages, "max-messages", 50000, "most messages one throughput run sends")
	flag.IntVar(&o.connections, "connections", 1000, "idle connections held for the connection RSS figure")
	flag.IntVar(&o.starts, "starts", 5, "cold starts averaged (-quick: 3)")
	flag.StringVar(&o.bin, "bin", "", "graphrelay binary to measure (default: go build ./cmd/graphrelay)")
	flag.StringVar(&o.spoolDir, "spool-dir", "", "directory for the daemons' spools and logs (default: a new one in $TMPDIR)")
	flag.StringVar(&o.jsonFile, "json", "bench-results.json", "write the results as JSON to this file (\"\" for none)")
	flag.StringVar(&o.daemonProf, "daemon-cpuprofile", "", "write a CPU profile of the daemon during the headline run to this file (through admin.pprof)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (SMTP clients and fake Graph) to this file")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "stop everything and fail if the whole run takes longer")
	steps := flag.String("steps", "start,idle,large,backlog,headline,floor,throughput", "the measurements to make, comma-separated: start, idle, large, backlog, headline, floor, throughput")
	flag.BoolVar(&o.keep, "keep", false, "keep the daemons' directories (configuration, log, spool) for inspection")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		// Explicit flags win over -quick's shorter defaults.
		if !set["duration"] {
			o.duration = 1500 * time.Millisecond
		}
		if !set["drain"] {
			o.drain = 10 * time.Second
		}
		if !set["starts"] {
			o.starts = 3
		}
	}
	o.sizes = []int{1, 10, 30}
	o.steps = map[string]bool{}
	for _, s := range strings.Split(*steps, ",") {
		o.steps[strings.TrimSpace(s)] = true
	}
	return o
}

func main() {
	o := parseFlags()
	if runtime.GOOS != "linux" {
		fmt.Fprintln(os.Stderr, "bench: Linux only (it reads /proc)")
		os.Exit(2)
	}
	if o.mailboxes < 1 || o.starts < 1 || o.batch < 1 || o.connections < 1 {
		fmt.Fprintln(os.Stderr, "bench: -mailboxes, -starts, -batch and -connections must be at least 1")
		os.Exit(2)
	}
	os.Exit(run(o))
}

func run(o options) int {
	began := time.Now()
	root, err := os.MkdirTemp(o.spoolDir, "graphrelay-bench-")
	if err != nil {
		warnf("%v", err)
		return 1
	}
	if o.keep {
		defer warnf("kept the daemons' configurations, logs and spools in %s", root)
	} else {
		defer os.RemoveAll(root)
	}
	e := &env{o: o, root: root, running: map[*benchkit.Daemon]bool{}}
	defer e.stopAll()

	// An interrupt, or a run past -timeout, stops the daemons and removes
	// the spools before exiting.
	abort := func(why string, code int) {
		warnf("%s; stopping the daemons", why)
		e.stopAll()
		if !o.keep {
			os.RemoveAll(root)
		}
		os.Exit(code)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		abort("interrupted", 130)
	}()
	time.AfterFunc(o.timeout, func() { abort(fmt.Sprintf("the run exceeded -timeout %s", o.timeout), 1) })

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			warnf("%v", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			warnf("%v", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if e.bin = o.bin; e.bin == "" {
		warnf("building graphrelay")
		if e.bin, err = benchkit.Build(root); err != nil {
			warnf("%v", err)
			return 1
		}
	}
	mailboxes := make([]string, o.mailboxes)
	for i := range mailboxes {
		mailboxes[i] = fmt.Sprintf("printer%02d@company.com", i+1)
	}
	if e.instant, err = benchkit.StartTenant(root, mailboxes, 0); err != nil {
		warnf("fake Graph: %v", err)
		return 1
	}
	defer e.instant.Close()
	slowDir := filepath.Join(root, "slow-fake")
	os.MkdirAll(slowDir, 0o755)
	if e.slow, err = benchkit.StartTenant(slowDir, mailboxes, o.latency); err != nil {
		warnf("fake Graph: %v", err)
		return 1
	}
	defer e.slow.Close()

	res := &Results{
		Environment: Environment{Daemon: benchkit.Version(e.bin), Go: runtime.Version(),
			Platform: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(), CPUModel: cpuModel(),
			CPUAvailable: benchkit.AvailableCPU(500 * time.Millisecond),
			Kernel:       kernel(), SpoolFS: filesystem(root), SpoolDir: root, StartedUTC: began.UTC().Format(time.RFC3339)},
		Settings: Settings{Quick: o.quick, RunSeconds: o.duration.Seconds(), DrainSeconds: o.drain.Seconds(),
			GraphLatencyMs: msOf(o.latency), Mailboxes: o.mailboxes, MailboxConcurrency: 4, Workers: o.workers,
			TransactionsPerConnection: o.batch, MessageBytes: messageSize, Delivery: "queue (durable spool, fsync before 250)",
			Log: "info, text, to a file"},
	}
	steps := []struct {
		key, name string
		run       func() error
	}{
		{"start", "cold start", func() (err error) { res.ColdStart, err = coldStarts(e, o.starts); return }},
		{"idle", "idle and connections", func() (err error) { res.Idle, err = idleAndConnections(e, o.connections); return }},
		{"large", "large messages", func() (err error) { res.LargeMessages, err = largeMessages(e, o.sizes); return }},
		{"backlog", "restart with 10,000 spooled messages", func() (err error) { res.Backlog, err = backlogStarts(e); return }},
		{"headline", "headline: one mailbox, default settings, one message per connection", func() error { return headline(e, res) }},
		{"floor", "floor: minimal go-smtp servers under the headline's load", func() error { return floors(e, res) }},
		{"throughput", "throughput, instant Graph", func() error { return throughput(e, e.instant, res) }},
		{"throughput", "throughput, Graph latency " + o.latency.String(), func() error { return throughput(e, e.slow, res) }},
	}
	for _, s := range steps {
		if !o.steps[s.key] {
			continue
		}
		warnf("%s", s.name)
		if err := s.run(); err != nil {
			warnf("%s: %v", s.name, err)
			res.Errors = append(res.Errors, s.name+": "+err.Error())
		}
	}
	e.stopAll()
	if m, err := benchkit.ReadMemory(os.Getpid()); err == nil {
		res.Bench.PeakRSSMB = mb(m.HWM)
	}
	res.Bench.CPUSeconds = benchkit.SelfCPUTime().Seconds()
	res.ElapsedSeconds = time.Since(began).Seconds()
	res.AboveDurableFloor = aboveDurableFloor(res)
	res.Targets = targets(res)
	printReport(os.Stdout, res)
	if o.jsonFile != "" {
		if err := writeJSON(o.jsonFile, res); err != nil {
			warnf("%v", err)
			return 1
		}
		fmt.Printf("\nresults written to %s\n", o.jsonFile)
	}
	if len(res.Errors) > 0 {
		return 1
	}
	return 0
}

// throughput runs every load shape against one fresh daemon wired to t.
func throughput(e *env, t *benchkit.Tenant, res *Results) error {
	dir, err := e.dir(fmt.Sprintf("throughput-%s", t.Latency))
	if err != nil {
		return err
	}
	d, err := e.start(dir, t)
	if err != nil {
		return err
	}
	defer e.stop(d)
	if err := warmUp(d, t); err != nil {
		return err
	}
	specs := []loadSpec{{clients: 1}, {clients: 16}, {clients: 64}, {clients: 16, perMessage: true}}
	for i, spec := range specs {
		r := &loadRun{d: d, t: t, tag: fmt.Sprintf("bench%d-%d", int(t.Latency.Milliseconds()), i), spec: spec,
			duration: e.o.duration, drain: e.o.drain, batch: e.o.batch, maxMessages: int64(e.o.maxMessages)}
		lr, err := r.run()
		if err != nil {
			return err
		}
		warnf("  %2d clients %-11s %6.0f accepted/s %6.0f delivered/s", lr.Clients, lr.Connections, lr.AcceptedPerSec, lr.DeliveredPerSec)
		res.Throughput = append(res.Throughput, lr)
	}
	return nil
}
