package graphtest

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// uploadSessionLifetime is how long an upload URL stays valid. Outlook does
// not document it; two hours comfortably covers a 150 MB upload.
const uploadSessionLifetime = 2 * time.Hour

// uploadSession is an attachment upload in progress on the Outlook upload
// host, which is a different host from Graph and authenticates by the
// authtoken in its URL alone (graph-api.md §2).
type uploadSession struct {
	id          string
	token       string
	host        string // upload host as it appears in the URL (with port on loopback)
	draftKey    string
	user        string // "{mailbox object id}@{tenant id}" as in Outlook URLs
	messageID   string
	name        string
	contentType string
	contentID   string
	isInline    bool
	size        int64
	data        []byte
	expires     time.Time
}

func (u *uploadSession) path() string {
	return "/api/v2.0/Users('" + u.user + "')/Messages('" + u.messageID + "')/AttachmentSessions('" + u.id + "')"
}

func (u *uploadSession) url() string {
	return "https://" + u.host + u.path() + "?authtoken=" + url.QueryEscape(u.token)
}

// dropSessionsLocked ends every session of a draft; s.mu must be held.
func (s *Server) dropSessionsLocked(draftKey string) {
	for id, sess := range s.sessions {
		if sess.draftKey == draftKey {
			delete(s.sessions, id)
		}
	}
}

// uploadError renders the Outlook REST error body, which has no innerError.
func uploadError(status int, code, message string) apiResponse {
	return jsonResponse(status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

// serveUpload handles PUT and DELETE on upload URLs.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	rec := UploadRequest{
		Method:        r.Method,
		Path:          r.URL.Path,
		ContentRange:  r.Header.Get("Content-Range"),
		Authorization: r.Header.Get("Authorization") != "",
		At:            s.now(),
	}
	resp, n := s.handleUpload(r)
	rec.Bytes = n
	rec.Status = resp.status
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	h.Set("request-id", newGUID())
	h.Set("Date", s.now().UTC().Format(http.TimeFormat))
	if resp.contentType != "" {
		h.Set("Content-Type", resp.contentType)
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
	s.recordUpload(rec)
}

// sessionFor finds the session a URL names and checks its authtoken and
// host, so a client that rewrites the opaque uploadUrl is caught.
func (s *Server) sessionFor(r *http.Request) (*uploadSession, *apiResponse) {
	const marker = "/AttachmentSessions('"
	p := r.URL.Path
	i := strings.LastIndex(p, marker)
	if !strings.HasPrefix(p, "/api/v2.0/Users('") || i < 0 || !strings.HasSuffix(p, "')") {
		resp := uploadError(http.StatusNotFound, "ResourceNotFound", "The resource '"+p+"' does not exist.")
		return nil, &resp
	}
	id := p[i+len(marker) : len(p)-2]
	s.mu.Lock()
	sess, ok := s.sessions[id]
	s.mu.Unlock()
	if !ok || sess.path() != p || !strings.EqualFold(sess.host, r.Host) {
		resp := uploadError(http.StatusNotFound, "ErrorItemNotFound", itemNotFoundMessage)
		return nil, &resp
	}
	tok := r.URL.Query().Get("authtoken")
	if subtle.ConstantTimeCompare([]byte(tok), []byte(sess.token)) != 1 {
		resp := uploadError(http.StatusUnauthorized, "InvalidAuthenticationToken", "The authtoken of the upload URL is missing or invalid.")
		return nil, &resp
	}
	if !s.now().Before(sess.expires) {
		resp := uploadError(http.StatusNotFound, "ErrorItemNotFound", "The upload session has expired.")
		return nil, &resp
	}
	return sess, nil
}

func (s *Server) handleUpload(r *http.Request) (apiResponse, int) {
	if r.Header.Get("Authorization") != "" {
		// The upload URL is pre-authenticated; DOC-largeAtt says not to send
		// an Authorization header, and a Graph token there is refused.
		return uploadError(http.StatusUnauthorized, "InvalidAuthenticationToken",
			"The upload URL is pre-authenticated by its authtoken; do not send an Authorization header."), 0
	}
	sess, errResp := s.sessionFor(r)
	if errResp != nil {
		return *errResp, 0
	}
	switch r.Method {
	case http.MethodDelete:
		s.mu.Lock()
		delete(s.sessions, sess.id)
		s.mu.Unlock()
		return apiResponse{status: http.StatusNoContent}, 0
	case http.MethodPut:
		return s.putChunk(r, sess)
	}
	return uploadError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method '"+r.Method+"' is not supported on an upload URL."), 0
}

// parseContentRange parses "bytes {start}-{end}/{total}".
func parseContentRange(v string) (start, end, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	start, err1 = strconv.ParseInt(a, 10, 64)
	end, err2 = strconv.ParseInt(b, 10, 64)
	total, err3 = strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start || total <= end {
		return 0, 0, 0, false
	}
	return start, end, total, true
}

// putChunk applies the byte-range rules: ranges in order, at most 4 MiB each,
// Content-Length equal to the range, and the total equal to the declared
// size. The last chunk completes the attachment on the draft.
func (s *Server) putChunk(r *http.Request, sess *uploadSession) (apiResponse, int) {
	if !hasContentLength(r) {
		return uploadError(http.StatusLengthRequired, "LengthRequired", "A Content-Length header is required."), 0
	}
	s.mu.Lock()
	next := int64(len(sess.data))
	s.mu.Unlock()
	rangeError := func(msg string) (apiResponse, int) {
		resp := uploadError(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", msg)
		resp.header = http.Header{"Content-Range": []string{fmt.Sprintf("bytes */%d", sess.size)}}
		return resp, 0
	}
	start, end, total, ok := parseContentRange(r.Header.Get("Content-Range"))
	if !ok {
		return rangeError("The Content-Range header is missing or is not of the form 'bytes {start}-{end}/{total}'.")
	}
	if total != sess.size {
		return rangeError(fmt.Sprintf("The total size %d does not match the attachment size %d declared for the session.", total, sess.size))
	}
	if start != next {
		return rangeError(fmt.Sprintf("Bytes must be uploaded in order; the next expected range starts at %d.", next))
	}
	n := end - start + 1
	if n > maxUploadChunkBytes {
		return uploadError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("A byte range may be at most %d bytes.", maxUploadChunkBytes)), 0
	}
	if r.ContentLength != n {
		return uploadError(http.StatusBadRequest, "InvalidRange", "The Content-Length does not match the Content-Range."), 0
	}
	chunk := make([]byte, n)
	if _, err := io.ReadFull(r.Body, chunk); err != nil {
		return uploadError(http.StatusBadRequest, "InvalidRange", "The request body is shorter than its Content-Length."), 0
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.sessions[sess.id]; !ok || cur != sess {
		return uploadError(http.StatusNotFound, "ErrorItemNotFound", itemNotFoundMessage), int(n)
	}
	if int64(len(sess.data)) != start {
		// A concurrent PUT for the same range won the race.
		return rangeError(fmt.Sprintf("Bytes must be uploaded in order; the next expected range starts at %d.", len(sess.data)))
	}
	if sess.data == nil {
		// The declared size is known and bounded (150 MB), so allocating it
		// once avoids copying tens of megabytes as chunks arrive.
		sess.data = make([]byte, 0, sess.size)
	}
	sess.data = append(sess.data, chunk...)
	if int64(len(sess.data)) < sess.size {
		return jsonResponse(http.StatusOK, map[string]any{
			"@odata.context":     "https://" + sess.host + "/api/v2.0/$metadata#Users('" + sess.user + "')/Messages('" + url.PathEscape(sess.messageID) + "')/AttachmentSessions/$entity",
			"ExpirationDateTime": outlookTimestamp(sess.expires),
			"nextExpectedRanges": []string{strconv.Itoa(len(sess.data))},
		}), int(n)
	}
	delete(s.sessions, sess.id)
	d, ok := s.drafts[sess.draftKey]
	if !ok {
		return uploadError(http.StatusNotFound, "ErrorItemNotFound", itemNotFoundMessage), int(n)
	}
	d.msg.Attachments = append(d.msg.Attachments, Attachment{
		Name:        sess.name,
		ContentType: sess.contentType,
		ContentID:   sess.contentID,
		IsInline:    sess.isInline,
		Content:     sess.data,
	})
	attachmentID := "AAMkAD" + randomToken(40) + "="
	return apiResponse{status: http.StatusCreated, header: http.Header{"Location": []string{
		"https://" + sess.host + "/api/v2.0/Users('" + sess.user + "')/Messages('" + sess.messageID + "')/Attachments('" + attachmentID + "')",
	}}}, int(n)
}
