package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
)

// rssKB reads this process's resident set size; the relay runs in-process.
func rssKB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

// TestSlowLoris holds 1,000 connections that each dribble a byte a second
// without ever finishing a command, and checks that an honest client is
// served while they are all held, and that each slow connection is cut by
// the read timeout, not before it. Both are shown by the order of events:
// the read timeout is long enough that a loaded machine sets up the
// connections and serves the honest client well inside it. (A partial
// line is answered "501 Bad command" at each read timeout, and go-smtp
// closes the connection at the fourth error, so the cut comes at about
// four read timeouts.)
func TestSlowLoris(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	t.Parallel()
	const (
		slow        = 1000
		readTimeout = 10 * time.Second
		// patience bounds how long after its read timeout a slow
		// connection may still be open before the test gives up: a
		// liveness bound, not a measurement; the cut comes at about
		// 4·readTimeout.
		patience = 60 * time.Second
	)
	r, fake := certRelay(t, func(cfg *config.Config) {
		cfg.SMTP.ReadTimeout = config.Duration(readTimeout)
		cfg.SMTP.Listeners[0].MaxConnections = slow + 50
		cfg.SMTP.Listeners[0].MaxConnectionsPerIP = slow + 50
	})
	before := rssKB()
	type slowConn struct {
		net.Conn
		opened time.Time
	}
	conns := make([]slowConn, 0, slow)
	for i := 0; i < slow; i++ {
		c, err := net.DialTimeout("tcp", r.addr, patience)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, slowConn{c, time.Now()})
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Each slow client sends part of a command, one byte a second, never
	// finishing the line, until the server cuts it; bounded by count.
	var cuts atomic.Int32
	early := make(chan time.Duration, slow)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(2)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(c.opened.Add(readTimeout + patience))
			io.Copy(io.Discard, c) // replies, then EOF when the server cuts us
			if d := time.Since(c.opened); d < readTimeout {
				early <- d
			} else if d < readTimeout+patience {
				cuts.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			for range int((readTimeout + patience) / time.Second) {
				if _, err := c.Write([]byte("E")); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}()
	}
	during := rssKB()
	// The honest client, while every slow connection is held.
	rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"ops@company.com"}, crlf("Subject: honest\n\nhello\n"))
	if rep.code != 250 {
		t.Errorf("honest client got %d %s", rep.code, rep.msg)
	}
	if n := cuts.Load() + int32(len(early)); n > 0 {
		t.Fatalf("%d slow connections were cut before the honest client was served; the test cannot show it was served during the attack", n)
	}
	wg.Wait()
	close(early)
	for d := range early {
		t.Errorf("a slow connection was cut after %v, before the %v read timeout", d, readTimeout)
	}
	if n := cuts.Load(); n != slow {
		t.Errorf("only %d of %d slow connections were cut within %v of the read timeout", n, slow, patience)
	}
	if len(fake.Deliveries()) != 1 {
		t.Errorf("deliveries = %d", len(fake.Deliveries()))
	}
	t.Logf("RSS (test process incl. relay and fake): before %d KiB, with %d slow connections %d KiB", before, slow, during)
}

func TestConnectionFlood(t *testing.T) {
	t.Parallel()
	r, _ := certRelay(t, func(cfg *config.Config) {
		cfg.SMTP.Listeners[0].MaxConnections = 40
		cfg.SMTP.Listeners[0].MaxConnectionsPerIP = 25
	})
	before := rssKB()
	greetings := map[string]int{}
	var open []net.Conn
	// All connections are opened before any greeting is read: the ones
	// over the limit that wait for a slot (at most two, smtpd/slotwait.go)
	// then wait together instead of one after the other.
	for i := 0; i < 60; i++ {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		open = append(open, c)
	}
	for _, c := range open {
		line, _ := bufio.NewReader(c).ReadString('\n')
		code := strings.SplitN(line, " ", 3)
		greetings[strings.Join(code[:min(2, len(code))], " ")]++
	}
	for _, c := range open {
		c.Close()
	}
	if countPrefix(greetings, "220") != 25 {
		t.Errorf("greetings = %v; want 25 admitted (the per-IP limit)", greetings)
	}
	if countPrefix(greetings, "421 4.7.0") != 35 {
		t.Errorf("greetings = %v; want 35 refused with 421 4.7.0", greetings)
	}
	t.Logf("greetings %v; RSS before %d KiB, after the flood %d KiB", greetings, before, rssKB())
	// Slots are released once the server sees the clients gone: a new
	// client is served. The deadline only bounds a hang.
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.HasPrefix(line, "220") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slots not released 60 s after the flood ended: %q", line)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countPrefix(m map[string]int, p string) int {
	n := 0
	for k, v := range m {
		if strings.HasPrefix(k, p) {
			n += v
		}
	}
	return n
}

func TestOversizedInput(t *testing.T) {
	t.Parallel()
	r, fake := certRelay(t, nil)
	t.Run("huge header block", func(t *testing.T) {
		hdr := strings.Repeat("X-Filler: "+strings.Repeat("h", 900)+"\r\n", 1500) // about 1.4 MB
		rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"ops@company.com"}, hdr+"Subject: big\r\n\r\nbody\r\n")
		if rep.code != 552 || !strings.HasPrefix(rep.msg, "5.3.4") {
			t.Errorf("reply %d %s", rep.code, rep.msg)
		}
	})
	t.Run("recipient flood", func(t *testing.T) {
		c := dialSMTP(t, r.addr)
		c.cmd(t, "EHLO flood")
		c.cmd(t, "MAIL FROM:<alerts@company.com>")
		// The connection's deadline only guards against a hang.
		c.conn.SetDeadline(time.Now().Add(5 * time.Minute))
		const attempts = 20000 // bounded stand-in for "a million"
		w := bufio.NewWriter(c.conn)
		go func() {
			for i := 0; i < attempts; i++ {
				fmt.Fprintf(w, "RCPT TO:<user%d@company.com>\r\n", i)
			}
			w.Flush()
		}()
		ok, full := 0, 0
		start := time.Now()
		for i := 0; i < attempts; i++ {
			switch rep := c.read(t); {
			case strings.HasPrefix(rep, "250"):
				ok++
			case strings.HasPrefix(rep, "452 4.5.3"):
				full++
			default:
				t.Fatalf("RCPT %d answered %q", i, rep)
			}
		}
		if ok != 500 || full != attempts-500 {
			t.Errorf("accepted %d and refused %d with 452 4.5.3; want 500 and %d", ok, full, attempts-500)
		}
		t.Logf("%d RCPTs answered in %v", ok+full, time.Since(start))
	})
	t.Run("100 MB against the 35 MB limit", func(t *testing.T) {
		if testing.Short() {
			t.Skip("100 MB")
		}
		before := rssKB()
		c := dialSMTP(t, r.addr)
		c.conn.SetDeadline(time.Now().Add(10 * time.Minute)) // only against a hang
		c.cmd(t, "EHLO big")
		c.cmd(t, "MAIL FROM:<alerts@company.com>")
		c.cmd(t, "RCPT TO:<ops@company.com>")
		if rep := c.cmd(t, "DATA"); !strings.HasPrefix(rep, "354") {
			t.Fatal(rep)
		}
		line := strings.Repeat("A", 998) + "\r\n"
		w := bufio.NewWriterSize(c.conn, 1<<16)
		start := time.Now()
		io.WriteString(w, "Subject: huge\r\n\r\n")
		for sent := 0; sent < 100<<20; sent += len(line) {
			io.WriteString(w, line)
		}
		io.WriteString(w, ".\r\n")
		w.Flush()
		sentAt := time.Since(start)
		rep := c.read(t)
		if !strings.HasPrefix(rep, "552 5.3.4") {
			t.Errorf("reply %q, want 552 5.3.4", rep)
		}
		t.Logf("100 MB sent in %v, 552 after %v; RSS before %d KiB, after %d KiB", sentAt, time.Since(start), before, rssKB())
		if rep := c.cmd(t, "NOOP"); !strings.HasPrefix(rep, "250") {
			t.Errorf("the session is not usable after the refusal: %q", rep)
		}
	})
	if n := len(fake.Deliveries()); n != 0 {
		t.Errorf("deliveries = %d", n)
	}
}

func TestHostileMIME(t *testing.T) {
	t.Parallel()
	r, fake := certRelay(t, nil)
	t.Run("nesting 5000 deep", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("Subject: deep\r\nMIME-Version: 1.0\r\n")
		const depth = 5000
		for i := 0; i < depth; i++ {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
		}
		b.WriteString("Content-Type: text/plain\r\n\r\ninnermost\r\n")
		for i := depth - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
		fake.Reset()
		rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"ops@company.com"}, b.String())
		if rep.code != 250 && !(rep.code == 554 && strings.HasPrefix(rep.msg, "5.6.0")) {
			t.Fatalf("reply %d %s; want delivery or a clean 554 5.6.0", rep.code, rep.msg)
		}
		if rep.code == 250 && len(fake.Deliveries()) != 1 {
			t.Error("accepted but not delivered")
		}
	})
	t.Run("10000 parts", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("Subject: wide\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"w\"\r\n\r\n")
		b.WriteString("--w\r\nContent-Type: text/plain\r\n\r\nbody\r\n")
		for i := 0; i < 10000; i++ {
			fmt.Fprintf(&b, "--w\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"p%d.bin\"\r\n\r\n%d\r\n", i, i)
		}
		b.WriteString("--w--\r\n")
		fake.Reset()
		rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"ops@company.com"}, b.String())
		if rep.code != 250 {
			t.Fatalf("reply %d %s", rep.code, rep.msg)
		}
		ds := fake.Deliveries()
		if len(ds) != 1 {
			t.Fatalf("deliveries = %d", len(ds))
		}
		names := map[string]bool{}
		for _, a := range ds[0].Message.Attachments {
			names[a.Name] = true
		}
		if !names["p0.bin"] || len(ds[0].Message.Attachments) < 2 {
			t.Errorf("attachments = %d; the parts beyond the limit must be kept, not dropped", len(ds[0].Message.Attachments))
		}
		t.Logf("10000 parts became %d attachments", len(ds[0].Message.Attachments))
	})
}
