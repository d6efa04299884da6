package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The large-message path (graph-api.md §2): a draft, the attachments, one
// upload session per large file, then /send. It needs the Mail.ReadWrite
// application permission besides Mail.Send, and it always saves the sent
// message to Sent Items: /send has no saveToSentItems parameter.
const (
	// MinUploadSessionBytes is the smallest attachment an upload session
	// accepts, and the size from which POST .../attachments refuses one
	// ("under 3 MB"; Microsoft does not say which megabyte, and the fake
	// uses the same 3,000,000 for both).
	MinUploadSessionBytes = 3_000_000
	// UploadChunkBytes is the size of each PUT: 12 × 320 KiB. Outlook asks
	// for at most 4 MB per range; OneDrive's rule that ranges be multiples
	// of 320 KiB is not stated for attachments, but this size obeys both.
	UploadChunkBytes = 12 * 320 << 10
	// MaxUploadSessionBytes is the largest attachment Graph accepts (and
	// only when the tenant's maximum message size allows it).
	MaxUploadSessionBytes = 150 << 20
)

// RequestLimitText names the request limit the way the logs and hints
// state it.
const RequestLimitText = "4,000,000-byte Graph request limit"

// TooLargeError reports a request that would exceed Graph's request limit,
// without sending it. need is the request's size in bytes.
func TooLargeError(op string, need int64, hint string) *Error {
	return &Error{Op: op, Class: Permanent, Status: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("a request of %d bytes exceeds the %s", need, RequestLimitText), hint: hint,
		limit: RequestLimitText}
}

// CreateDraft creates msg as a draft in mailbox's Drafts folder and returns
// its id. The request is the message resource itself, at most
// MaxRequestBytes of JSON.
func (c *Client) CreateDraft(ctx context.Context, mailbox string, msg *Message) (string, Receipt, error) {
	body, err := json.Marshal(msg)
	if err != nil {
		return "", Receipt{}, fmt.Errorf("encode draft: %w", err)
	}
	if len(body) > MaxRequestBytes {
		return "", Receipt{}, TooLargeError("createMessage", int64(len(body)),
			"the body, headers and recipients alone exceed one Graph request; Graph cannot carry this message")
	}
	var created struct {
		ID string `json:"id"`
	}
	rcpt, err := c.exchange(ctx, "createMessage", mailbox, http.MethodPost, c.userURL(mailbox, "messages"), "application/json", body, &created)
	if err != nil {
		return "", rcpt, err
	}
	if created.ID == "" {
		return "", rcpt, &Error{Op: "createMessage", Class: Transient, Status: http.StatusCreated, RequestID: rcpt.RequestID,
			ClientRequestID: rcpt.ClientRequestID, Message: "the created draft has no id", hint: "an HTTPS proxy or a Graph change altered the response; the message is retried"}
	}
	return created.ID, rcpt, nil
}

// AddAttachment adds one attachment of less than MinUploadSessionBytes to
// a draft.
func (c *Client) AddAttachment(ctx context.Context, mailbox, messageID string, a *Attachment) (Receipt, error) {
	body, err := json.Marshal(a)
	if err != nil {
		return Receipt{}, fmt.Errorf("encode attachment: %w", err)
	}
	if len(body) > MaxRequestBytes {
		// Only an attachment a few bytes under 3,000,000 gets here: its
		// base64 and JSON exceed the request limit, yet an upload session
		// refuses it as too small.
		return Receipt{}, TooLargeError("addAttachment", int64(len(body)),
			"an attachment just under 3 MB is too large for one request and too small for an upload session; Graph cannot carry it")
	}
	rcpt, err := c.do(ctx, "addAttachment", mailbox, http.MethodPost, c.draftURL(mailbox, messageID, "attachments"), "application/json", body)
	return rcpt, unambiguous(err)
}

// AttachmentItem is the createUploadSession parameter (CSDL
// microsoft.graph.attachmentItem).
type AttachmentItem struct {
	AttachmentType string `json:"attachmentType"` // "file"
	Name           string `json:"name"`
	Size           int64  `json:"size"`
	ContentType    string `json:"contentType,omitempty"`
	IsInline       bool   `json:"isInline,omitempty"`
	ContentID      string `json:"contentId,omitempty"`
}

// UploadSession is an open attachment upload. URL is opaque and
// pre-authenticated: it is used as given, without an Authorization header.
type UploadSession struct {
	URL     string
	Expires string // expirationDateTime as Graph wrote it, for the logs
}

// CreateUploadSession opens an upload session for one attachment of at
// least MinUploadSessionBytes on a draft.
func (c *Client) CreateUploadSession(ctx context.Context, mailbox, messageID string, item AttachmentItem) (UploadSession, Receipt, error) {
	if item.AttachmentType == "" {
		item.AttachmentType = "file"
	}
	body, err := json.Marshal(struct {
		AttachmentItem AttachmentItem `json:"AttachmentItem"`
	}{item})
	if err != nil {
		return UploadSession{}, Receipt{}, fmt.Errorf("encode upload session request: %w", err)
	}
	var resp struct {
		UploadURL          string `json:"uploadUrl"`
		ExpirationDateTime string `json:"expirationDateTime"`
	}
	target := c.draftURL(mailbox, messageID, "attachments", "createUploadSession")
	rcpt, err := c.exchange(ctx, "uploadSession", mailbox, http.MethodPost, target, "application/json", body, &resp)
	if err != nil {
		return UploadSession{}, rcpt, err
	}
	if u, perr := url.Parse(resp.UploadURL); perr != nil || u.Scheme != "https" || u.Host == "" {
		return UploadSession{}, rcpt, &Error{Op: "uploadSession", Class: Transient, Status: http.StatusCreated, RequestID: rcpt.RequestID,
			ClientRequestID: rcpt.ClientRequestID, Message: "the upload session has no usable https uploadUrl",
			hint: "an HTTPS proxy or a Graph change altered the response; the message is retried"}
	}
	return UploadSession{URL: resp.UploadURL, Expires: resp.ExpirationDateTime}, rcpt, nil
}

// Upload PUTs size bytes from r to the session in UploadChunkBytes ranges,
// in order, and returns the number of PUTs. Every intermediate range must
// be answered 200 with the next expected range; the last one 201. Nothing
// is retried here: a failed upload fails the message, whose draft the
// caller deletes, and the delivery is retried as a whole.
func (c *Client) Upload(ctx context.Context, mailbox string, s UploadSession, r io.Reader, size int64) (int, error) {
	if size <= 0 {
		return 0, fmt.Errorf("upload: empty attachment")
	}
	buf := make([]byte, min(size, UploadChunkBytes))
	chunks := 0
	for off := int64(0); off < size; chunks++ {
		n := min(int64(len(buf)), size-off)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return chunks, fmt.Errorf("upload: read attachment at byte %d of %d: %w", off, size, err)
		}
		if err := c.putRange(ctx, mailbox, s, buf[:n], off, size); err != nil {
			return chunks, err
		}
		off += n
	}
	return chunks, nil
}

// putRange sends one byte range. The upload URL is on the Outlook host and
// carries its own authtoken: sending the Graph token there is refused, and
// would hand the token to another host.
func (c *Client) putRange(ctx context.Context, mailbox string, s UploadSession, chunk []byte, off, total int64) error {
	end := off + int64(len(chunk)) - 1
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.URL, bytes.NewReader(chunk))
	if err != nil {
		return fmt.Errorf("build upload request: %w", err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, end, total))
	resp, err := c.hc.Do(req)
	if err != nil {
		return classify("upload", mailbox, nil, nil, redactUploadURL(err), true)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if e := classify("upload", mailbox, resp, body, nil, true); e != nil {
		e.Message = fmt.Sprintf("range %d-%d/%d: %s", off, end, total, e.Message)
		return e
	}
	last := end == total-1
	outOfStep := func(msg string) error {
		return &Error{Op: "upload", Class: Transient, Status: resp.StatusCode, RequestID: resp.Header.Get("request-id"),
			Message: fmt.Sprintf("range %d-%d/%d: %s", off, end, total, msg),
			hint:    "the upload service and graphrelay disagree about the upload; the message is retried from the start"}
	}
	switch {
	case last && resp.StatusCode == http.StatusCreated:
		return nil
	case last:
		return outOfStep(fmt.Sprintf("the last range was answered %d, not 201 Created", resp.StatusCode))
	case resp.StatusCode == http.StatusCreated:
		return outOfStep("the upload completed before its last range")
	}
	next, ok := nextExpected(body)
	if ok && next != end+1 {
		return outOfStep(fmt.Sprintf("the service expects byte %d next", next))
	}
	return nil
}

// redactUploadURL removes the query, which holds the session's authtoken,
// from the URL that net/http puts in its errors, so that a failed upload
// cannot write a credential into the log.
func redactUploadURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = "authtoken=REDACTED"
			ue.URL = u.String()
		} else {
			ue.URL = "(upload URL)"
		}
	}
	return err
}

// nextExpected reads the start of the first nextExpectedRanges entry
// ("2097152" or "2097152-"). encoding/json matches member names without
// regard to case, which the mixed casing of the Outlook upload service's
// answers (ExpirationDateTime beside nextExpectedRanges) requires.
func nextExpected(body []byte) (int64, bool) {
	var st struct {
		NextExpectedRanges []string `json:"nextExpectedRanges"`
	}
	if json.Unmarshal(body, &st) != nil || len(st.NextExpectedRanges) == 0 {
		return 0, false
	}
	start, _, _ := strings.Cut(st.NextExpectedRanges[0], "-")
	n, err := strconv.ParseInt(strings.TrimSpace(start), 10, 64)
	return n, err == nil
}

// SendDraft sends a draft. Graph requires Content-Length: 0 on this POST
// (411 otherwise); net/http sends it for an empty POST body.
func (c *Client) SendDraft(ctx context.Context, mailbox, messageID string) (Receipt, error) {
	return c.do(ctx, "send", mailbox, http.MethodPost, c.draftURL(mailbox, messageID, "send"), "", []byte{})
}

// DeleteDraft deletes a draft, which also ends its open upload sessions.
func (c *Client) DeleteDraft(ctx context.Context, mailbox, messageID string) (Receipt, error) {
	rcpt, err := c.do(ctx, "deleteMessage", mailbox, http.MethodDelete, c.draftURL(mailbox, messageID), "", nil)
	return rcpt, unambiguous(err)
}

func (c *Client) draftURL(mailbox, messageID string, rest ...string) string {
	return c.userURL(mailbox, append([]string{"messages", url.PathEscape(messageID)}, rest...)...)
}

// unambiguous clears Ambiguous on failures of draft operations: only /send
// can deliver a message, so a 5xx on any other step cannot have sent it.
func unambiguous(err error) error {
	var e *Error
	if errors.As(err, &e) {
		e.Ambiguous = false
	}
	return err
}
