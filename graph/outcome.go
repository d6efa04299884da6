package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Class is what a Graph or Entra outcome means for delivery.
type Class int

const (
	// Transient outcomes are retried: throttling, server errors, network
	// failures, timeouts, and every token failure (the admin can fix the
	// credential, and the mail should go out once they have).
	Transient Class = iota + 1
	// Permanent outcomes are not retried: Graph refused the message or the
	// mailbox, and asking again gives the same answer.
	Permanent
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	}
	return "unknown"
}

// Error is a failed Graph or token exchange, classified.
type Error struct {
	Op              string // token, sendMail, createMessage, addAttachment, uploadSession, upload, send, deleteMessage
	Class           Class
	Status          int    // HTTP status; 0 when no response arrived
	Code            string // Graph error.code, or AADSTSnnnn for Entra
	Message         string // Graph's or Entra's own message, first line
	RetryAfter      time.Duration
	RequestID       string
	ClientRequestID string
	// Ambiguous is set when the request may have been carried out although
	// no success was seen (a timeout, a 5xx or a broken connection after
	// sendMail was sent). Graph has no idempotency key, so a retry may
	// duplicate the message.
	Ambiguous bool
	hint      string
	err       error
	// limit names the size limit a too-large message exceeded, when it is
	// known before sending; it is safe to show to the SMTP client.
	limit string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.err != nil && e.Status == 0 {
		b.WriteString(": " + e.err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.err }

// Temporary reports whether a retry may succeed.
func (e *Error) Temporary() bool { return e.Class == Transient }

// Permanent reports whether Graph's answer will not change on retry.
func (e *Error) Permanent() bool { return e.Class == Permanent }

// AccessDenied reports a refusal of the mailbox or the app by the tenant.
func (e *Error) AccessDenied() bool { return e.Status == http.StatusForbidden }

// TooLarge reports a message bigger than Graph or the tenant accepts.
func (e *Error) TooLarge() bool {
	return e.Status == http.StatusRequestEntityTooLarge || e.Code == "ErrorMessageSizeExceeded"
}

// SizeLimit names the limit a too-large message exceeded, "" if unknown.
func (e *Error) SizeLimit() string { return e.limit }

// Hint is the admin's next step, for the log line.
func (e *Error) Hint() string { return e.hint }

// Retry returns how long to wait before the next attempt, 0 if Graph did not
// say.
func (e *Error) Retry() time.Duration { return e.RetryAfter }

// graphErrorBody is Graph's OData error shape.
type graphErrorBody struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			RequestID string `json:"request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

// entraErrorBody is the token endpoint's error shape.
type entraErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
}

// classify is the one function that turns a Graph or Entra exchange into an
// outcome. resp is nil when the request failed in transport; err then says
// why. sent tells whether the request may have reached Graph, which makes a
// failure of a non-idempotent operation ambiguous. It returns nil for
// success.
func classify(op, mailbox string, resp *http.Response, body []byte, err error, sent bool) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return classifyToken(re)
	}
	// Only a sendMail or a draft's /send can deliver a message, so only
	// their failures after the request went out are ambiguous.
	sent = sent && mayDeliver(op)
	if err != nil {
		e := &Error{Op: op, Class: Transient, err: err}
		var ne net.Error
		switch {
		case errors.Is(err, context.Canceled):
			e.hint = "the relay is shutting down; the message will be retried"
		case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
			e.Ambiguous = sent
			e.hint = "Graph did not answer in time (graph.timeout); check outbound HTTPS to the Graph host"
		case sent:
			// A reset, an HTTP/2 stream error or an EOF after the request
			// went out: Graph was reached and may have acted on it.
			e.Ambiguous = true
			e.hint = "the connection to Graph failed after the request was sent, so Graph may have accepted it and the message may arrive twice; if this repeats, check for a proxy or firewall that cuts HTTPS connections"
		default:
			e.hint = "cannot reach Microsoft Graph or Entra; check DNS, the firewall and any HTTPS proxy (HTTPS_PROXY)"
		}
		return e
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &Error{Op: op, Status: resp.StatusCode, RequestID: resp.Header.Get("request-id"),
		ClientRequestID: resp.Header.Get("client-request-id"), RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var gb graphErrorBody
	if json.Unmarshal(body, &gb) == nil {
		e.Code, e.Message = gb.Error.Code, firstLine(gb.Error.Message)
		if e.RequestID == "" {
			e.RequestID = gb.Error.InnerError.RequestID
		}
	}
	e.Class, e.hint = graphOutcome(e, mailbox)
	if e.Class == Transient && resp.StatusCode >= 500 {
		e.Ambiguous = sent
	}
	return e
}

// mayDeliver reports whether op can send a message: the steps that build
// a draft cannot, whatever happens to them.
func mayDeliver(op string) bool {
	switch op {
	case "token", "createMessage", "addAttachment", "uploadSession", "upload", "deleteMessage":
		return false
	}
	return true
}

func graphOutcome(e *Error, mailbox string) (Class, string) {
	msg := strings.ToLower(e.Message)
	switch {
	case e.Status == http.StatusUnauthorized && e.Code == "MailboxNotEnabledForRESTAPI",
		e.Code == "MailboxNotEnabledForRESTAPI":
		return Permanent, fmt.Sprintf("%s has no Exchange Online mailbox (unlicensed, on-premises, or deleted); use a licensed or shared mailbox", mailbox)
	case e.Status == http.StatusUnauthorized && e.Op == "upload":
		return Transient, "the upload service refused the upload URL's own authtoken (the session expired or was ended); the message is retried from a new draft"
	case e.Status == http.StatusUnauthorized:
		return Transient, "Graph rejected the access token; the token is refreshed and the message retried. If it persists, check the system clock and that graph.cloud matches the tenant"
	case e.Status == http.StatusTooManyRequests:
		return Transient, fmt.Sprintf("Graph throttled mailbox %s; graphrelay waits for Retry-After. Sustained throttling means more than 4 concurrent requests or over 30 messages per minute for this mailbox", mailbox)
	case e.Code == "ErrorAccessDenied" && strings.Contains(msg, "odata is disabled"):
		return Permanent, fmt.Sprintf("the Exchange Application Access Policy (or RBAC for Applications scope) excludes %s: add it to the policy's mail-enabled security group, allow up to an hour, then check with Test-ApplicationAccessPolicy or graphrelay check", mailbox)
	case e.Code == "ErrorAccessDenied" && needsReadWrite(e.Op):
		return Permanent, "large messages need the Mail.ReadWrite application permission (for the draft and its upload sessions): grant Mail.ReadWrite (Application) with admin consent, or set delivery.large_messages: reject to refuse messages over the " + RequestLimitText
	case e.Code == "ErrorAccessDenied":
		return Permanent, "the app lacks the Mail.Send application permission or admin consent: grant Mail.Send (Application, not Delegated) and click 'Grant admin consent'"
	case e.Code == "ErrorSendAsDenied":
		return Permanent, fmt.Sprintf("the message's From is not %s and the mailbox has no Send As right on it; let graphrelay set the From to the mailbox, or grant Send As", mailbox)
	case e.Code == "ErrorMessageSubmissionBlocked":
		return Permanent, fmt.Sprintf("%s is blocked from sending (for example restricted as an outbound spam source); unblock it in the Microsoft Defender portal under Restricted entities", mailbox)
	case e.Code == "ErrorInvalidUser", e.Status == http.StatusNotFound:
		return Permanent, fmt.Sprintf("mailbox %s does not exist in this tenant; check mailboxes (address or object id) and graph.tenant_id", mailbox)
	case e.TooLarge():
		return Permanent, "the message exceeds what Graph accepts in one request or the tenant's maximum message size; lower smtp.max_message_bytes or enable the large-message upload path"
	case e.Code == "ErrorInvalidRecipients":
		return Permanent, "Graph refused a recipient address as invalid; check the addresses the sender used"
	case e.Code == "InvalidInternetMessageHeader", e.Code == "InvalidInternetMessageHeaderCollection",
		e.Code == "ErrorMimeContentInvalidBase64String", e.Code == "RequestBodyRead", e.Code == "BadRequest",
		e.Code == "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize", e.Code == "InvalidRange":
		return Permanent, "Graph refused the request graphrelay built; this is a graphrelay bug, please report it with the request-id"
	case e.Status == http.StatusRequestTimeout, e.Status >= 500:
		return Transient, "Microsoft Graph had a temporary failure; the message is retried"
	}
	return Permanent, "Graph refused the message; see the error code in the Graph documentation"
}

// needsReadWrite reports the operations of the large-message path that
// Graph authorises with Mail.ReadWrite rather than Mail.Send.
func needsReadWrite(op string) bool {
	switch op {
	case "createMessage", "addAttachment", "uploadSession", "deleteMessage":
		return true
	}
	return false
}

var aadstsRE = regexp.MustCompile(`AADSTS(\d+)`)

// classifyToken turns a token endpoint failure into an outcome. Every token
// failure is transient for delivery: the credential is the admin's to fix,
// and the mail should go out once it is fixed.
func classifyToken(re *oauth2.RetrieveError) *Error {
	e := &Error{Op: "token", Class: Transient, err: re}
	if re.Response != nil {
		e.Status = re.Response.StatusCode
		e.RetryAfter = parseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now())
	}
	var body entraErrorBody
	if json.Unmarshal(re.Body, &body) == nil && body.Error != "" {
		e.Message = firstLine(body.ErrorDescription)
		if len(body.ErrorCodes) > 0 {
			e.Code = fmt.Sprintf("AADSTS%d", body.ErrorCodes[0])
		} else if m := aadstsRE.FindStringSubmatch(body.ErrorDescription); m != nil {
			e.Code = "AADSTS" + m[1]
		} else {
			e.Code = body.Error
		}
		// Entra's description starts with the code, which Error() prints
		// already.
		e.Message = strings.TrimPrefix(e.Message, e.Code+": ")
	} else if re.ErrorCode != "" {
		e.Code = re.ErrorCode
	}
	e.hint = tokenHint(e.Code, e.Status)
	return e
}

func tokenHint(code string, status int) string {
	switch code {
	case "AADSTS700027":
		return "Entra does not accept the certificate: upload graphrelay's certificate (.cer) under Certificates & secrets of the app registration, or point graph.certificate_file at the certificate that is registered"
	case "AADSTS700024":
		return "the client assertion is outside its valid time: the system clock is wrong; enable NTP"
	case "AADSTS50027":
		return "Entra refused the client assertion as malformed or for the wrong audience; check graph.cloud and graph.authority_url"
	case "AADSTS50048":
		return "the assertion's subject does not match its issuer; check graph.client_id"
	case "AADSTS7000215":
		return "the client secret is wrong: use the secret's Value, not its Secret ID"
	case "AADSTS7000222":
		return "the client secret has expired: create a new one under Certificates & secrets, or switch to a certificate"
	case "AADSTS7000218":
		return "no credential was sent; configure a certificate or a client secret"
	case "AADSTS700016":
		return "the application was not found in the tenant: check graph.client_id and graph.tenant_id, and that the app is registered in this tenant"
	case "AADSTS90002", "AADSTS900023":
		return "the tenant was not found: check graph.tenant_id and graph.cloud"
	case "AADSTS70011", "AADSTS700022":
		return "the token scope is invalid: check graph.cloud, graph.graph_url and graph.scope"
	case "AADSTS7000112":
		return "the application is disabled in Entra; enable it"
	case "AADSTS90038":
		return "the tenant belongs to another national cloud; set graph.cloud accordingly"
	case "AADSTS700021":
		return "the client assertion names another application than graph.client_id; check graph.client_id"
	case "AADSTS9001023":
		return "graph.tenant_id must be your tenant's ID or verified domain, not common, organizations or consumers"
	case "AADSTS500011":
		return "the Graph resource was not found in this tenant: check graph.cloud and graph.scope (the scope names the resource, not the host you send to)"
	case "AADSTS700211", "AADSTS700212", "AADSTS700213":
		return "no federated credential on the app matches the workload identity token (issuer, audience api://AzureADTokenExchange, subject); check the federated credential and the service account"
	}
	if status >= 500 || status == http.StatusTooManyRequests {
		return "Entra ID had a temporary failure; the token request is retried"
	}
	if status == 0 {
		return "cannot reach the Entra token endpoint; check DNS, the firewall and any HTTPS proxy"
	}
	return "Entra refused the token request; see the AADSTS code in Microsoft's error reference"
}

// parseRetryAfter reads Retry-After as seconds, fractional values included
// (Graph's documented sample is "2.128"), or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\r")
	s, _, _ = strings.Cut(s, "\n")
	const max = 300
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strings.TrimSpace(s)
}
