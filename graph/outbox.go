package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// OutboxTransport is the dry-run transport: instead of reaching Graph it
// writes each request to a file in Dir and answers 202 as Graph would. The
// requests are built by the same code as in production, so the outbox
// shows exactly what would have been sent.
type OutboxTransport struct {
	Dir string
	Log *slog.Logger
	seq atomic.Uint64
}

// OutboxEntry is the JSON written for one request.
type OutboxEntry struct {
	Mailbox         string          `json:"mailbox"`
	Method          string          `json:"method"`
	URL             string          `json:"url"`
	ContentType     string          `json:"content_type"`
	ClientRequestID string          `json:"client_request_id"`
	Body            json.RawMessage `json:"body,omitempty"`
	// MIMEBase64 holds the body of a MIME (text/plain) request.
	MIMEBase64 string    `json:"mime_base64,omitempty"`
	WrittenAt  time.Time `json:"written_at"`
}

// RoundTrip implements http.RoundTripper.
func (t *OutboxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("dry-run: read request body: %w", err)
		}
		body = b
	}
	entry := OutboxEntry{
		Mailbox:         mailboxFromPath(req.URL.EscapedPath()),
		Method:          req.Method,
		URL:             req.URL.String(),
		ContentType:     req.Header.Get("Content-Type"),
		ClientRequestID: req.Header.Get("client-request-id"),
		WrittenAt:       time.Now().UTC(),
	}
	if json.Valid(body) {
		entry.Body = body
	} else {
		entry.MIMEBase64 = string(body)
	}
	if err := os.MkdirAll(t.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("dry-run: create outbox %s: %w", t.Dir, err)
	}
	name := fmt.Sprintf("%s-%04d-%s.json", entry.WrittenAt.Format("20060102T150405.000"), t.seq.Add(1)%10000, entry.ClientRequestID)
	path := filepath.Join(t.Dir, name)
	data, err := json.MarshalIndent(entry, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("dry-run: encode outbox entry: %w", err)
	}
	if err := writeFileAtomic(path, data); err != nil {
		return nil, fmt.Errorf("dry-run: write outbox entry: %w", err)
	}
	t.Log.Info("dry-run: wrote the Graph request instead of sending it", "id", MessageID(req.Context()), "path", path, "mailbox", entry.Mailbox)
	h := http.Header{}
	h.Set("request-id", "dry-run-"+entry.ClientRequestID)
	h.Set("client-request-id", entry.ClientRequestID)
	return &http.Response{StatusCode: http.StatusAccepted, Status: "202 Accepted", Header: h,
		Body: io.NopCloser(bytes.NewReader(nil)), Request: req, ProtoMajor: 1, ProtoMinor: 1}, nil
}

// writeFileAtomic writes through a temporary name so a reader of the outbox
// never sees a half-written file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func mailboxFromPath(p string) string {
	_, rest, ok := strings.Cut(p, "/users/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	if u, err := url.PathUnescape(id); err == nil {
		return u
	}
	return id
}
