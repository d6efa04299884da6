package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
)

// BacklogResult is a restart with a large spool: how soon the restarted
// daemon greets an SMTP client, and how long it takes to read the
// messages the previous run left (in the background since issue 18; a
// build that reads them before it listens greets only afterwards).
type BacklogResult struct {
	Messages int `json:"messages"`
	// GreetMs is exec → the first 220, per start; ReadMs the daemon's own
	// "read_ms" of its backlog (0 when its log does not say).
	GreetMs []float64 `json:"greeting_ms"`
	ReadMs  []float64 `json:"read_ms"`
}

// backlogMessages is the spool size of the restart measurement.
const backlogMessages = 10000

// backlogStarts restarts a daemon three times on a spool holding
// backlogMessages messages, written directly in the spool's documented
// format (queue/FORMAT.md) with a next try an hour ahead, so that none is
// delivered meanwhile. The first start reads a cold page cache only if
// the machine dropped it; all three are reported.
func backlogStarts(e *env) (BacklogResult, error) {
	res := BacklogResult{Messages: backlogMessages}
	dir, err := e.dir("backlog")
	if err != nil {
		return res, err
	}
	if err := writeBacklog(filepath.Join(dir, "spool"), backlogMessages); err != nil {
		return res, err
	}
	readRE := regexp.MustCompile(`msg="resuming spooled messages".* read_ms=([0-9.]+)`)
	for range 3 {
		d, err := e.start(dir, e.instant)
		if err != nil {
			return res, err
		}
		res.GreetMs = append(res.GreetMs, msOf(d.Greeted))
		read := 0.0
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			b, _ := os.ReadFile(d.LogPath)
			logs := string(b)
			if i := strings.LastIndex(logs, "starting graphrelay"); i >= 0 {
				logs = logs[i:]
			}
			if m := readRE.FindStringSubmatch(logs); m != nil {
				read, _ = strconv.ParseFloat(m[1], 64)
				break
			}
			if strings.Contains(logs, "smtp listener ready") && strings.Contains(logs, "resuming spooled messages") {
				break // an older build: read before listening, no read_ms
			}
		}
		res.ReadMs = append(res.ReadMs, read)
		e.stop(d)
	}
	return res, nil
}

// writeBacklog writes n 4 KB messages into dir/queue.
func writeBacklog(spool string, n int) error {
	q := filepath.Join(spool, "queue")
	if err := os.MkdirAll(q, 0o700); err != nil {
		return err
	}
	next := time.Now().Add(time.Hour)
	for i := range n {
		id := envelope.NewID()
		raw, _ := io.ReadAll(message("printer01@company.com", fmt.Sprintf("backlog-%d", i)))
		line, err := json.Marshal(map[string]any{
			"version": 1,
			"envelope": map[string]any{"id": id, "listener": "bench", "client_ip": "127.0.0.1", "helo": "bench",
				"tls": false, "from": "printer01@company.com", "recipients": []string{"alice@company.com"},
				"mailbox": map[string]string{"address": "printer01@company.com"}, "format": "json",
				"received_at": time.Now(), "size": len(raw)},
			"next_try": next,
			"attempts": []any{},
		})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(q, id+".msg"), append(append(line, '\n'), raw...), 0o600); err != nil {
			return err
		}
	}
	return nil
}
