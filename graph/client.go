package graph

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/oauth2"
)

// MaxRequestBytes is Graph's limit for one REST request. Nobody has
// published whether "4 MB" means 4,000,000 or 4,194,304 bytes, so the
// smaller is used.
const MaxRequestBytes = 4_000_000

// Client calls Microsoft Graph's mail endpoints for app-only tokens.
type Client struct {
	base string // e.g. https://graph.microsoft.com/v1.0
	hc   *http.Client
	log  *slog.Logger

	// newTokens builds a fresh token cache. A 401 from Graph means the
	// cached token is no longer accepted although it has not expired, so
	// the cache is replaced and the request retried once. Requests that
	// got their 401 together replace it once: only the first whose cache
	// is still the current one builds a new one, and the others use it, so
	// one 401 event costs one token request.
	newTokens func() oauth2.TokenSource
	mu        sync.Mutex
	tokens    oauth2.TokenSource
	gen       int // counts replacements of tokens
}

// NewClient returns a client for graphURL (the host, without /v1.0). hc
// carries TLS and proxy settings; newTokens is nil for a transport that
// needs no token (dry-run).
func NewClient(graphURL string, hc *http.Client, newTokens func() oauth2.TokenSource, log *slog.Logger) *Client {
	c := &Client{base: strings.TrimRight(graphURL, "/") + "/v1.0", hc: hc, log: log, newTokens: newTokens}
	if newTokens != nil {
		c.tokens = newTokens()
	}
	return c
}

// Receipt identifies an accepted Graph request for the logs.
type Receipt struct {
	RequestID       string
	ClientRequestID string
}

// SendMail posts a JSON sendMail request for mailbox (address or object id).
func (c *Client) SendMail(ctx context.Context, mailbox string, req *SendMailRequest) (Receipt, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Receipt{}, fmt.Errorf("encode sendMail request: %w", err)
	}
	return c.SendMailBody(ctx, mailbox, body)
}

// SendMailBody posts a sendMail request already encoded as JSON (a
// SendMailRequest through encoding/json), for a caller that encoded it to
// learn its size.
func (c *Client) SendMailBody(ctx context.Context, mailbox string, body []byte) (Receipt, error) {
	if len(body) > MaxRequestBytes {
		return Receipt{}, &Error{Op: "sendMail", Class: Permanent, Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("request of %d bytes exceeds Graph's %d-byte limit", len(body), MaxRequestBytes),
			hint:    "the message is too large for one sendMail request; enable the large-message upload path or lower smtp.max_message_bytes"}
	}
	return c.do(ctx, "sendMail", mailbox, http.MethodPost, c.userURL(mailbox, "sendMail"), "application/json", body)
}

// SendMIME posts a raw RFC 5322 message, base64-encoded as Graph requires.
func (c *Client) SendMIME(ctx context.Context, mailbox string, mime []byte) (Receipt, error) {
	body := make([]byte, base64.StdEncoding.EncodedLen(len(mime)))
	base64.StdEncoding.Encode(body, mime)
	if len(body) > MaxRequestBytes {
		return Receipt{}, &Error{Op: "sendMail", Class: Permanent, Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("MIME request of %d bytes exceeds Graph's %d-byte limit", len(body), MaxRequestBytes),
			hint:    "MIME passthrough is limited to about 3 MB of raw message; use the json format for larger mail"}
	}
	return c.do(ctx, "sendMail", mailbox, http.MethodPost, c.userURL(mailbox, "sendMail"), "text/plain", body)
}

func (c *Client) userURL(mailbox string, rest ...string) string {
	u := c.base + "/users/" + url.PathEscape(mailbox)
	for _, r := range rest {
		u += "/" + r
	}
	return u
}

// do sends one request, retrying once with a fresh token after a 401.
func (c *Client) do(ctx context.Context, op, mailbox, method, target, contentType string, body []byte) (Receipt, error) {
	return c.exchange(ctx, op, mailbox, method, target, contentType, body, nil)
}

// exchange is do, and decodes a successful response's JSON into out when
// out is not nil.
func (c *Client) exchange(ctx context.Context, op, mailbox, method, target, contentType string, body []byte, out any) (Receipt, error) {
	ts, gen := c.tokenSource()
	rcpt, err := c.once(ctx, ts, op, mailbox, method, target, contentType, body, out)
	// Only Graph's 401 means the token was rejected: a token request that
	// Entra refused (often also a 401) never produced one to reject.
	if e, ok := err.(*Error); ok && e.Op != "token" && e.Status == http.StatusUnauthorized && e.Code != "MailboxNotEnabledForRESTAPI" && c.newTokens != nil {
		c.mu.Lock()
		if c.gen == gen {
			c.log.Warn("graph rejected the access token; fetching a new one", "op", op, "mailbox", mailbox, "request_id", e.RequestID)
			c.tokens = c.newTokens()
			c.gen++
		}
		ts = c.tokens
		c.mu.Unlock()
		rcpt, err = c.once(ctx, ts, op, mailbox, method, target, contentType, body, out)
	}
	return rcpt, err
}

// tokenSource returns the current token cache (nil without tokens) and
// its generation.
func (c *Client) tokenSource() (oauth2.TokenSource, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens, c.gen
}

// maxResponseBytes bounds a successful response that is decoded. Creating
// a draft answers with the whole message resource, body included, so it
// can approach the 4 MB of the request.
const maxResponseBytes = 16 << 20

func (c *Client) once(ctx context.Context, ts oauth2.TokenSource, op, mailbox, method, target, contentType string, body []byte, out any) (Receipt, error) {
	crid, _ := newUUIDv4()
	rcpt := Receipt{ClientRequestID: crid}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return rcpt, fmt.Errorf("build %s request: %w", op, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("client-request-id", crid)
	req.Header.Set("return-client-request-id", "true")
	if ts != nil {
		tok, err := ts.Token()
		if err != nil {
			return rcpt, classify("token", mailbox, nil, nil, err, false)
		}
		tok.SetAuthHeader(req)
	}
	var wrote atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
	}))
	resp, err := c.hc.Do(req)
	if err != nil {
		// Once the whole request is written, Graph may have carried it
		// out, whatever happens to the connection afterwards.
		e := classify(op, mailbox, nil, nil, err, wrote.Load())
		e.ClientRequestID = crid
		return rcpt, e
	}
	defer resp.Body.Close()
	limit := int64(64 << 10)
	if out != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		limit = maxResponseBytes
	}
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	rcpt.RequestID = resp.Header.Get("request-id")
	if e := classify(op, mailbox, resp, respBody, nil, true); e != nil {
		if e.ClientRequestID == "" {
			e.ClientRequestID = crid
		}
		return rcpt, e
	}
	if out != nil {
		if err := json.Unmarshal(respBody, out); err != nil {
			return rcpt, &Error{Op: op, Class: Transient, Status: resp.StatusCode, RequestID: rcpt.RequestID, ClientRequestID: crid,
				Message: "the response is not the JSON Graph documents", hint: "an HTTPS proxy or a Graph change altered the response; the message is retried", err: err}
		}
	}
	c.log.Debug("graph request accepted", "op", op, "mailbox", mailbox, "status", resp.StatusCode,
		"request_id", rcpt.RequestID, "client_request_id", crid)
	return rcpt, nil
}

// TokenReady reports whether an access token is cached or can be obtained
// now, for the health endpoints. It returns nil for a client that needs no
// token (dry-run), and ctx's error when ctx ends first: the token request
// itself (bounded by graph.timeout) goes on and fills the cache.
func (c *Client) TokenReady(ctx context.Context) error {
	ts, _ := c.tokenSource()
	if ts == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := ts.Token()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no token within the probe's time: %w", ctx.Err())
	}
}
