package graphtest

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Roles Graph requires (graph-api.md §1.1 and §2).
const (
	roleMailSend      = "Mail.Send"
	roleMailReadWrite = "Mail.ReadWrite"
)

type routeKind int

const (
	routeSendMail routeKind = iota + 1
	routeCreateDraft
	routeDeleteDraft
	routeAddAttachment
	routeCreateUploadSession
	routeSendDraft
)

// graphRoute is the outcome of matching a Graph URL. err is set for paths
// the fake does not serve; it is reported only after authentication, as
// Graph authenticates before it resolves the resource.
type graphRoute struct {
	kind      routeKind
	method    string
	role      string
	mailbox   string // the {id} segment, unescaped
	messageID string
	err       *graphError
}

// parseGraphPath matches /v1.0/users/{id}/... . Fixed segments and action
// names are matched case-insensitively, and actions are also accepted with
// their "microsoft.graph." namespace prefix (graph-api.md §1.1).
func parseGraphPath(escaped string) graphRoute {
	raw := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		u, err := url.PathUnescape(r)
		if err != nil {
			return graphRoute{err: badRequest("BadRequest", "Resource not found for the segment '%s'.", r)}
		}
		segs[i] = u
	}
	if !strings.EqualFold(segs[0], "v1.0") {
		return graphRoute{err: badRequest("BadRequest", "Invalid version: %s. This fake serves only v1.0.", segs[0])}
	}
	if len(segs) < 2 || segs[1] == "" {
		return graphRoute{err: badRequest("BadRequest", "Resource not found for the segment ''.")}
	}
	if strings.EqualFold(segs[1], "me") {
		return graphRoute{err: badRequest("BadRequest", "/me request is only valid with delegated authentication flow.")}
	}
	if !strings.EqualFold(segs[1], "users") {
		return graphRoute{err: badRequest("BadRequest", "Resource not found for the segment '%s'.", segs[1])}
	}
	if len(segs) < 4 || segs[2] == "" {
		return graphRoute{err: badRequest("BadRequest", "Resource not found for the segment 'users'.")}
	}
	rt := graphRoute{mailbox: segs[2]}
	rest := segs[3:]
	is := func(seg, name string) bool {
		return strings.EqualFold(seg, name) || strings.EqualFold(seg, "microsoft.graph."+name)
	}
	unknown := func(seg string) graphRoute {
		rt.err = badRequest("BadRequest", "Resource not found for the segment '%s'.", seg)
		return rt
	}
	switch {
	case len(rest) == 1 && is(rest[0], "sendMail"):
		rt.kind, rt.method, rt.role = routeSendMail, http.MethodPost, roleMailSend
	case !strings.EqualFold(rest[0], "messages"):
		return unknown(rest[0])
	case len(rest) == 1:
		rt.kind, rt.method, rt.role = routeCreateDraft, http.MethodPost, roleMailReadWrite
	case rest[1] == "":
		return unknown(rest[1])
	case len(rest) == 2:
		rt.kind, rt.method, rt.role = routeDeleteDraft, http.MethodDelete, roleMailReadWrite
	case len(rest) == 3 && strings.EqualFold(rest[2], "attachments"):
		rt.kind, rt.method, rt.role = routeAddAttachment, http.MethodPost, roleMailReadWrite
	case len(rest) == 4 && strings.EqualFold(rest[2], "attachments") && is(rest[3], "createUploadSession"):
		rt.kind, rt.method, rt.role = routeCreateUploadSession, http.MethodPost, roleMailReadWrite
	case len(rest) == 3 && is(rest[2], "send"):
		rt.kind, rt.method, rt.role = routeSendDraft, http.MethodPost, roleMailSend
	default:
		return unknown(rest[len(rest)-1])
	}
	if len(rest) > 1 {
		rt.messageID = rest[1]
	}
	return rt
}

// graphCall carries one Graph API request through the pipeline.
type graphCall struct {
	s               *Server
	r               *http.Request
	route           graphRoute
	host            string
	requestID       string
	clientRequestID string
	mb              Mailbox
	mbKnown         bool
	reset           bool // a Reset fault: drop the connection, answer nothing
}

// resetConnection ends the request without an answer. On HTTP/1.1 the
// connection is hijacked and closed with SO_LINGER 0, which sends a TCP
// RST; on HTTP/2, which cannot be hijacked, aborting the handler resets
// the stream.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}

// serveGraph is the Graph API pipeline. The order follows the real service:
// the front door authenticates and authorises, Exchange then resolves the
// mailbox, applies the access policy and the per-mailbox concurrency limit,
// and only then reads and validates the request.
func (s *Server) serveGraph(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	c := &graphCall{
		s:               s,
		r:               r,
		route:           parseGraphPath(r.URL.EscapedPath()),
		host:            hostOnly(r.Host),
		requestID:       newGUID(),
		clientRequestID: r.Header.Get("client-request-id"),
	}
	if c.clientRequestID == "" {
		// Graph answers with its own request id in client-request-id when
		// the client did not send one.
		c.clientRequestID = c.requestID
	}
	c.mb, c.mbKnown = s.lookupMailbox(c.route.mailbox)
	key := s.inflightKey(c.route.mailbox)
	inFlight := s.enterFlight(key)
	resp := c.run(inFlight)
	if !c.reset {
		c.write(w, resp)
	}
	s.leaveFlight(key)
	s.recordGraph(GraphRequest{
		Method:          r.Method,
		Path:            r.URL.Path,
		Mailbox:         c.route.mailbox,
		ClientRequestID: r.Header.Get("client-request-id"),
		RequestID:       c.requestID,
		Status:          resp.status,
		Start:           start,
		End:             s.now(),
	})
	if c.reset {
		resetConnection(w)
	}
}

func (c *graphCall) fail(e *graphError) apiResponse {
	return e.render(c.s.now(), c.requestID, c.clientRequestID)
}

func (c *graphCall) run(inFlight int) apiResponse {
	s, r := c.s, c.r
	s.sleep(r.Context(), s.cfg.Latency)
	if _, _, ok := s.graphAudience(c.host); !ok {
		return c.fail(badRequest("BadRequest", "The host name '%s' is not a Microsoft Graph endpoint.", c.host))
	}
	token, gerr := s.validateBearer(r.Header.Get("Authorization"), c.host)
	if gerr != nil {
		return c.fail(gerr)
	}
	if c.route.err != nil {
		return c.fail(c.route.err)
	}
	if r.Method != c.route.method {
		return c.fail(newGraphError(http.StatusMethodNotAllowed, "BadRequest",
			"The HTTP method '"+r.Method+"' is not allowed for this resource."))
	}
	if !token.hasRole(c.route.role) {
		return c.fail(newGraphError(http.StatusForbidden, "ErrorAccessDenied", accessDeniedMessage))
	}
	if !c.mbKnown {
		return c.fail(newGraphError(http.StatusNotFound, "ErrorInvalidUser",
			"The requested user '"+c.route.mailbox+"' is invalid."))
	}
	if c.mb.NoExchange {
		return c.fail(newGraphError(http.StatusNotFound, "MailboxNotEnabledForRESTAPI", mailboxNotEnabledMessage))
	}
	if !s.accessAllowed(c.mb) {
		return c.fail(newGraphError(http.StatusForbidden, "ErrorAccessDenied", accessPolicyMessage))
	}
	if inFlight > s.cfg.MaxConcurrency {
		e := newGraphError(http.StatusTooManyRequests, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.")
		e.header = http.Header{"Retry-After": []string{s.cfg.ThrottleRetryAfter}}
		return c.fail(e)
	}
	fault, faulted := s.takeGraphFault(c.route.mailbox, c.mb, c.mbKnown)
	if faulted && fault.Reset {
		c.reset = true
		if !fault.AfterAccept {
			// The whole request arrives before the reset, as when a proxy
			// cuts the connection while Graph works on it: the client has
			// finished writing, so its request was sent.
			io.Copy(io.Discard, r.Body)
			return apiResponse{status: 0}
		}
		resp := c.dispatch()
		resp.status = 0 // no answer reached the client
		return resp
	}
	if faulted && !fault.AfterAccept {
		if !s.sleep(r.Context(), fault.Delay) && fault.Status == 0 {
			// The client gave up during the delay, so the request counts as
			// never having reached Exchange and is not processed.
			return c.fail(newGraphError(499, "RequestCancelled", "The client closed the request."))
		}
		if fault.Status != 0 {
			return c.fail(graphFaultError(fault))
		}
	}
	resp := c.dispatch()
	if faulted && fault.AfterAccept {
		s.sleep(r.Context(), fault.Delay)
		if fault.Status != 0 && resp.status < 300 {
			return c.fail(graphFaultError(fault))
		}
	}
	return resp
}

func (c *graphCall) dispatch() apiResponse {
	var resp apiResponse
	var gerr *graphError
	switch c.route.kind {
	case routeSendMail:
		resp, gerr = c.sendMail()
	case routeCreateDraft:
		resp, gerr = c.createDraft()
	case routeDeleteDraft:
		resp, gerr = c.deleteDraft()
	case routeAddAttachment:
		resp, gerr = c.addAttachment()
	case routeCreateUploadSession:
		resp, gerr = c.createUploadSession()
	case routeSendDraft:
		resp, gerr = c.sendDraft()
	}
	if gerr != nil {
		return c.fail(gerr)
	}
	return resp
}

func (c *graphCall) write(w http.ResponseWriter, resp apiResponse) {
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	h.Set("request-id", c.requestID)
	h.Set("client-request-id", c.clientRequestID)
	h.Set("Date", c.s.now().UTC().Format(http.TimeFormat))
	if resp.contentType != "" {
		h.Set("Content-Type", resp.contentType)
	}
	status := resp.status
	if status == 499 {
		// 499 is only a recording of an abandoned request; nobody reads it.
		status = http.StatusRequestTimeout
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp.body)
}

// readBody reads the request body, refusing more than MaxRequestBytes with
// 413 without buffering beyond the limit.
func (c *graphCall) readBody() ([]byte, *graphError) {
	limit := c.s.cfg.MaxRequestBytes
	tooLarge := newGraphError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
		"The request body exceeds the maximum allowed size.")
	if c.r.ContentLength > int64(limit) {
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(c.r.Body, int64(limit)+1))
	if err != nil {
		return nil, badRequest("BadRequest", "The request body could not be read.")
	}
	if len(b) > limit {
		return nil, tooLarge
	}
	return b, nil
}

// hasContentLength reports whether the request declared its length, which
// Graph requires on POST .../send and the upload service on PUT (411 or 416
// otherwise). A chunked body has no declared length.
func hasContentLength(r *http.Request) bool {
	return r.Header.Get("Content-Length") != "" && r.ContentLength >= 0 && len(r.TransferEncoding) == 0
}
