package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
)

// Admin requests reach the running daemon through files in ctl/, so that
// the daemon stays the only writer of queue/ and failed/ while it runs:
// no admin command can race with a delivery attempt on the same message.
//
//   - The admin writes ctl/<rid>.req.tmp, then renames it to ctl/<rid>.req.
//   - The daemon looks into ctl/ every ControlInterval, carries the request
//     out, writes ctl/<rid>.res (again by rename) and removes the .req.
//   - The admin reads the .res and removes it.
//
// When no daemon holds the spool lock, the admin command takes the lock
// itself and carries the request out directly, with the same code.

// Request is an admin request.
type Request struct {
	Op  string `json:"op"` // retry, delete or requeue
	ID  string `json:"id,omitempty"`
	All bool   `json:"all,omitempty"` // retry every waiting message
}

// Response is the outcome of a Request.
type Response struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
	// Count is how many messages the request affected.
	Count int `json:"count"`
}

// Admin operations.
const (
	OpRetry   = "retry"
	OpDelete  = "delete"
	OpRequeue = "requeue"
)

// executor carries out admin requests: the running Queue, or the Spool
// directly when no daemon runs.
type executor interface {
	retry(id string) (string, error)
	retryAll() (int, error)
	deleteMessage(id string) (string, error)
	requeue(id string) (string, error)
}

// execute runs req against x.
func execute(x executor, req Request) Response {
	var msg string
	var err error
	count := 1
	switch {
	case req.Op == OpRetry && req.All:
		count, err = x.retryAll()
		msg = fmt.Sprintf("%d messages scheduled for delivery now", count)
	case !ValidID(req.ID):
		err = fmt.Errorf("%q is not a queue id", req.ID)
	case req.Op == OpRetry:
		msg, err = x.retry(req.ID)
	case req.Op == OpDelete:
		msg, err = x.deleteMessage(req.ID)
	case req.Op == OpRequeue:
		msg, err = x.requeue(req.ID)
	default:
		err = fmt.Errorf("unknown operation %q", req.Op)
	}
	if err != nil {
		return Response{OK: false, Message: err.Error()}
	}
	return Response{OK: true, Message: msg, Count: count}
}

// statsInterval is how often queue statistics go to the Observer.
const statsInterval = 5 * time.Second

// controlLoop serves admin requests, and reports queue statistics, until
// Close.
func (q *Queue) controlLoop() {
	defer q.loopsDone.Done()
	t := time.NewTicker(q.opts.ControlInterval)
	defer t.Stop()
	var lastStats time.Time
	for {
		select {
		case <-q.quit:
			return
		case now := <-t.C:
			q.serveControl()
			if now.Sub(lastStats) >= statsInterval {
				q.reportStats(now)
				lastStats = now
			}
		}
	}
}

// serveControl answers every pending request in ctl/.
func (q *Queue) serveControl() {
	dir := filepath.Join(q.opts.Dir, areaCtl)
	entries, err := os.ReadDir(dir)
	if err != nil {
		q.log.Error("cannot read admin requests", "dir", dir, "err", err)
		return
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".req"):
			rid := strings.TrimSuffix(name, ".req")
			q.serveRequest(dir, rid)
		case strings.HasSuffix(name, ".res"):
			// An admin that gave up waiting leaves its answer behind.
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
				_ = os.Remove(filepath.Join(dir, name))
			}
		}
	}
}

func (q *Queue) serveRequest(dir, rid string) {
	path := filepath.Join(dir, rid+".req")
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var req Request
	var resp Response
	if err := json.Unmarshal(b, &req); err != nil {
		resp = Response{Message: "malformed request: " + err.Error()}
	} else {
		resp = execute(q, req)
	}
	q.log.Info("admin request", "op", req.Op, "id", req.ID, "all", req.All, "ok", resp.OK, "result", resp.Message)
	out, _ := json.Marshal(resp)
	if err := writeFileAtomic(filepath.Join(dir, rid+".res"), out); err != nil {
		q.log.Error("cannot answer admin request", "request", rid, "err", err)
	}
	_ = os.Remove(path)
}

// sendControl hands req to the running daemon and waits for its answer.
func sendControl(root string, req Request, timeout time.Duration) (Response, error) {
	dir := filepath.Join(root, areaCtl)
	rid := envelope.NewID()
	b, _ := json.Marshal(req)
	reqPath, resPath := filepath.Join(dir, rid+".req"), filepath.Join(dir, rid+".res")
	if err := writeFileAtomic(reqPath, b); err != nil {
		return Response{}, fmt.Errorf("send request to the daemon: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		out, err := os.ReadFile(resPath)
		if err == nil {
			_ = os.Remove(resPath)
			var resp Response
			if err := json.Unmarshal(out, &resp); err != nil {
				return Response{}, fmt.Errorf("malformed answer from the daemon: %w", err)
			}
			return resp, nil
		}
		// On Windows the answer can be caught while the daemon's rename
		// still holds it; that is "not yet" too.
		if !errors.Is(err, fs.ErrNotExist) && !isBusy(err) {
			return Response{}, err
		}
		if time.Now().After(deadline) {
			if os.Remove(reqPath) == nil {
				return Response{}, fmt.Errorf("the daemon holding %s did not take the request within %s; is it hung?", root, timeout)
			}
			return Response{}, fmt.Errorf("the daemon took the request but did not answer within %s; check its log", timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// writeFileAtomic writes path by rename, so readers never see a partial
// file. Control files need no fsync: they matter only while both
// processes run.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, filePerm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
