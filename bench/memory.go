package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/graphrelay/graphrelay/bench/internal/benchkit"
)

// mb converts /proc's KiB to MB of 10^6 bytes, the unit the targets are
// written in, so that no figure looks better for a unit's sake.
func mb(kib int64) float64 { return float64(kib) * 1024 / 1e6 }

// LargeResult is the daemon's memory while relaying one large message.
type LargeResult struct {
	SizeMB       int     `json:"size_mb"` // nominal, 10^6 bytes
	MessageBytes int64   `json:"message_bytes"`
	IdleRSSMB    float64 `json:"idle_rss_mb"`
	PeakRSSMB    float64 `json:"peak_rss_mb"` // VmHWM after the delivery
	Seconds      float64 `json:"seconds"`     // from connect to the fake's 202
	// LastByteTo250Ms is from the final "." of DATA to the 250: the time
	// the daemon takes to spool the message durably.
	LastByteTo250Ms float64 `json:"last_byte_to_250_ms"`
	Delivery        string  `json:"delivery"` // the fake's delivery kind, or what went wrong
}

// largeMessages relays one message of each size through a fresh daemon,
// so that each VmHWM belongs to that message alone.
func largeMessages(e *env, sizesMB []int) ([]LargeResult, error) {
	var out []LargeResult
	for _, size := range sizesMB {
		dir, err := e.dir(fmt.Sprintf("large-%dmb", size))
		if err != nil {
			return nil, err
		}
		msgFile := filepath.Join(dir, "message.eml")
		_, msgBytes, err := benchkit.WriteLargeMessage(msgFile, benchkit.AttachmentForMessage(int64(size)*1e6))
		if err != nil {
			return nil, err
		}
		res := LargeResult{SizeMB: size, MessageBytes: msgBytes}
		d, err := e.start(dir, e.instant)
		if err != nil {
			return nil, err
		}
		idle, err := d.Memory()
		if err != nil {
			d.Stop()
			return nil, err
		}
		res.IdleRSSMB = mb(idle.RSS)
		e.instant.Fake.Reset()
		start := time.Now()
		rep, err := benchkit.SendFile(d.Addr, "scanner@mfp.lan", []string{"alice@company.com"}, msgFile, 2*time.Minute)
		if err == nil {
			res.LastByteTo250Ms = msOf(rep.Replied.Sub(rep.DataDone))
		}
		if err != nil {
			res.Delivery = "SMTP: " + err.Error()
		} else if ds := e.instant.Fake.WaitDeliveries(1, 2*time.Minute); len(ds) == 0 {
			res.Delivery = "not delivered within 2 minutes"
		} else {
			res.Delivery = ds[0].Kind
			res.Seconds = time.Since(start).Seconds()
		}
		peak, err := d.Memory()
		e.stop(d)
		os.Remove(msgFile)
		e.instant.Fake.Reset() // drops the fake's copy of the attachment
		if err != nil {
			return nil, err
		}
		res.PeakRSSMB = mb(peak.HWM)
		out = append(out, res)
	}
	return out, nil
}

// IdleResult is the daemon's memory idle, then holding idle connections.
type IdleResult struct {
	IdleRSSMB       float64 `json:"idle_rss_mb"`
	IdleHWMMB       float64 `json:"idle_hwm_mb"`
	Connections     int     `json:"connections"` // greeted and held
	Wanted          int     `json:"connections_wanted"`
	ConnectionRSSMB float64 `json:"connections_rss_mb"`
	ConnectionHWMMB float64 `json:"connections_hwm_mb"`
	FirstError      string  `json:"first_error,omitempty"`
}

// idleAndConnections starts a daemon, reads its memory once it has
// settled, then opens n connections, reads each greeting and holds them
// all while reading the memory again.
func idleAndConnections(e *env, n int) (IdleResult, error) {
	res := IdleResult{Wanted: n}
	dir, err := e.dir("idle")
	if err != nil {
		return res, err
	}
	d, err := e.start(dir, e.instant)
	if err != nil {
		return res, err
	}
	defer e.stop(d)
	// Start-up work (config, credentials, spool scan) has finished by the
	// 220; a second lets its goroutines exit, as on a real idle server.
	time.Sleep(time.Second)
	m, err := d.Memory()
	if err != nil {
		return res, err
	}
	res.IdleRSSMB, res.IdleHWMMB = mb(m.RSS), mb(m.HWM)

	conns := make([]net.Conn, 0, n)
	var mu sync.Mutex
	var errs []string
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := greet(d.Addr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	res.Connections = len(conns)
	if len(errs) > 0 {
		res.FirstError = fmt.Sprintf("%d failed, first: %s", len(errs), errs[0])
	}
	time.Sleep(500 * time.Millisecond)
	if m, err = d.Memory(); err != nil {
		return res, err
	}
	res.ConnectionRSSMB, res.ConnectionHWMMB = mb(m.RSS), mb(m.HWM)
	return res, nil
}

// greet connects and reads the 220, and keeps the connection open.
func greet(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	k, err := c.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:k]), "220") {
		c.Close()
		return nil, fmt.Errorf("greeting %q: %v", buf[:k], err)
	}
	c.SetReadDeadline(time.Time{})
	return c, nil
}
