package graphtest

import (
	"net/http"
	"strings"
	"time"
)

// Fault is a scripted Graph failure. Queued faults (FailGraph) are consumed
// one per matching Graph API request, in FIFO order; an outage
// (SetGraphOutage) applies to every matching request until cleared. Upload
// PUTs on the Outlook upload host are never faulted.
type Fault struct {
	Mailbox string // "" matches any mailbox; else an address or object id
	// Status is the HTTP status to answer. 0 means no error: the request is
	// delayed by Delay and then handled normally.
	Status int
	// Code is Graph's error.code; empty picks the usual code for Status
	// (429 TooManyRequests, 503 ServiceUnavailable, 504 UnknownError, ...).
	Code       string
	Message    string // empty picks the usual message for Code
	RetryAfter string // raw Retry-After header value, e.g. "2.5"; "" sends none
	Delay      time.Duration
	// AfterAccept makes the request succeed first (a sendMail or /send is
	// recorded as delivered) and only then answers with the fault, which is
	// the ambiguous outcome of a timeout or 5xx after Graph accepted mail.
	AfterAccept bool
	// Reset drops the connection instead of answering: a TCP reset on
	// HTTP/1.1, a stream reset on HTTP/2. With AfterAccept the message is
	// accepted first, which is the ambiguous outcome of a connection that
	// a proxy or load balancer cut after the request went out. Status is
	// ignored.
	Reset bool
}

// TokenFault is a scripted token-endpoint failure, consumed one per token
// request (Entra token endpoint or IMDS) in FIFO order.
type TokenFault struct {
	// AADSTS selects the error; the body is the one documented for that code
	// (graph-api.md §4.4). Codes the fake does not know get a generic
	// invalid_request body carrying the code.
	AADSTS int
	// Status overrides the HTTP status; 0 uses the documented status.
	Status int
}

// FailGraph queues a Graph fault.
func (s *Server) FailGraph(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.graphFaults = append(s.graphFaults, f)
}

// SetGraphOutage makes every matching Graph API request fail with f until
// SetGraphOutage(nil).
func (s *Server) SetGraphOutage(f *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == nil {
		s.graphOutage = nil
		return
	}
	c := *f
	s.graphOutage = &c
}

// FailToken queues a token-endpoint fault.
func (s *Server) FailToken(f TokenFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenFaults = append(s.tokenFaults, f)
}

// SetTokenOutage makes every token request answer status (for example 503)
// until SetTokenOutage(0).
func (s *Server) SetTokenOutage(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenOutage = status
}

// takeGraphFault returns the outage if one applies, else removes and returns
// the first queued fault matching the mailbox.
func (s *Server) takeGraphFault(ref string, mb Mailbox, known bool) (Fault, bool) {
	matches := func(f Fault) bool {
		if f.Mailbox == "" || strings.EqualFold(f.Mailbox, ref) {
			return true
		}
		return known && ((mb.Address != "" && strings.EqualFold(f.Mailbox, mb.Address)) || strings.EqualFold(f.Mailbox, mb.ID))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.graphOutage != nil && matches(*s.graphOutage) {
		return *s.graphOutage, true
	}
	for i, f := range s.graphFaults {
		if matches(f) {
			s.graphFaults = append(s.graphFaults[:i:i], s.graphFaults[i+1:]...)
			return f, true
		}
	}
	return Fault{}, false
}

// takeTokenFault returns the outage status, or the first queued token fault.
func (s *Server) takeTokenFault() (outage int, f TokenFault, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokenOutage != 0 {
		return s.tokenOutage, TokenFault{}, false
	}
	if len(s.tokenFaults) == 0 {
		return 0, TokenFault{}, false
	}
	f = s.tokenFaults[0]
	s.tokenFaults = s.tokenFaults[1:]
	return 0, f, true
}

// graphFaultError turns a fault into the Graph error it answers with.
func graphFaultError(f Fault) *graphError {
	code, msg := f.Code, f.Message
	if code == "" {
		code = defaultGraphCode(f.Status)
	}
	if msg == "" {
		msg = defaultGraphMessage(code, f.Status)
	}
	e := &graphError{status: f.Status, code: code, message: msg}
	if f.RetryAfter != "" {
		e.header = http.Header{"Retry-After": []string{f.RetryAfter}}
	}
	return e
}

func defaultGraphCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken"
	case http.StatusForbidden:
		return "ErrorAccessDenied"
	case http.StatusNotFound:
		return "ErrorItemNotFound"
	case http.StatusRequestEntityTooLarge:
		return "RequestEntityTooLarge"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusInternalServerError:
		return "ErrorInternalServerError"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusGatewayTimeout:
		return "UnknownError"
	}
	return "UnknownError"
}

func defaultGraphMessage(code string, status int) string {
	switch code {
	case "TooManyRequests":
		return "Please retry again later."
	case "ApplicationThrottled":
		return "Application is over its MailboxConcurrency limit."
	case "ServiceUnavailable":
		return "The service is temporarily unavailable. Please retry later."
	case "ErrorInternalServerError":
		return "An internal server error occurred. The operation failed."
	case "ErrorAccessDenied":
		return "Access is denied. Check credentials and try again."
	case "InvalidAuthenticationToken":
		return "Access token has expired or is not yet valid."
	case "ErrorItemNotFound":
		return "The specified object was not found in the store."
	case "ErrorSendAsDenied":
		return sendAsDeniedMessage
	case "MailboxNotEnabledForRESTAPI":
		return mailboxNotEnabledMessage
	}
	if t := http.StatusText(status); t != "" {
		return t + "."
	}
	return "The request failed."
}
