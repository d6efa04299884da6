package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Access is what a mailbox probe found out about one mailbox.
type Access string

const (
	// AccessGranted: the tenant lets the app send as the mailbox.
	AccessGranted Access = "granted"
	// AccessDenied: Graph answered 403, because an Application Access
	// Policy (or an RBAC for Applications scope) excludes the mailbox, or
	// because the token carries no Mail.Send role. The Error's Hint says
	// which.
	AccessDenied Access = "denied"
	// AccessNoMailbox: there is no such user, or it has no Exchange Online
	// mailbox.
	AccessNoMailbox Access = "no mailbox"
	// AccessUnknown: the probe did not get an answer that decides the
	// question (throttling, a Graph outage, a network failure, or an error
	// the probe does not expect).
	AccessUnknown Access = "unknown"
)

// ProbeResult is the outcome of ProbeAccess.
type ProbeResult struct {
	Access Access
	// Err is Graph's classified answer: ErrorInvalidRecipients for a
	// granted mailbox, the refusal otherwise. It is nil only when Graph
	// accepted the probe outright, which it is not expected to do.
	Err *Error
	// Accepted is set when Graph answered 2xx to the recipient-less
	// message. Nothing can be delivered without a recipient, but it means
	// Graph no longer validates recipients the way the probe relies on.
	Accepted bool
	Receipt  Receipt
}

// probeSubject names the probe in the unlikely case that Exchange ever keeps
// a copy of it somewhere an admin could see it.
const probeSubject = "graphrelay access probe (no recipients, never delivered)"

// ProbeAccess asks Graph whether the app may send as mailbox (an address or
// object id) without sending anything: the equivalent of Exchange's
// Test-ApplicationAccessPolicy with only the Mail.Send permission, which
// cannot read mailboxes or users.
//
// It posts a sendMail whose message has no recipients at all, with
// saveToSentItems false. Graph authorises the request before it looks at
// the body: the token's roles, then the mailbox, then the Application
// Access Policy, so a mailbox outside the policy is refused with 403
// ErrorAccessDenied ("Access to OData is disabled"). Only a request that
// passed all of that reaches submission, where Exchange refuses a message
// without recipients with 400 ErrorInvalidRecipients ("A message can't be
// sent because it contains no recipients"), which therefore means granted.
//
// Why it cannot deliver mail: delivery needs a recipient, and the message
// has none, in To, Cc or Bcc; there is no header from which Exchange could
// take one (JSON messages have no MIME headers). Should Graph ever accept
// such a message instead of refusing it, there would still be nobody to
// deliver it to, and saveToSentItems false keeps it out of Sent Items; the
// result then reports Accepted so the caller can say so.
//
// The order of the checks is not documented by Microsoft (graph-api.md
// records the two errors, not their precedence). If Exchange validated the
// body first, a denied mailbox would look granted: the probe is a fast,
// safe indicator, and a real message (graphrelay check --send-test) is the
// definitive test.
func (c *Client) ProbeAccess(ctx context.Context, mailbox string) ProbeResult {
	no := false
	body, err := json.Marshal(&SendMailRequest{
		Message: Message{
			Subject: probeSubject,
			Body: ItemBody{ContentType: BodyText,
				Content: "graphrelay check: a recipient-less message that Graph refuses after authorising the mailbox."},
		},
		SaveToSentItems: &no,
	})
	if err != nil {
		// A fixed, fully typed value always marshals.
		panic(fmt.Sprintf("graph: encode the access probe: %v", err))
	}
	rcpt, err := c.do(ctx, "probe", mailbox, http.MethodPost, c.userURL(mailbox, "sendMail"), "application/json", body)
	res := ProbeResult{Receipt: rcpt}
	if err == nil {
		res.Access, res.Accepted = AccessGranted, true
		return res
	}
	var e *Error
	if !errors.As(err, &e) {
		res.Access = AccessUnknown
		res.Err = &Error{Op: "probe", Class: Transient, err: err, hint: "the probe could not be sent; see the error"}
		return res
	}
	res.Err = e
	switch {
	case e.Status == http.StatusBadRequest && e.Code == "ErrorInvalidRecipients":
		res.Access = AccessGranted
	case e.Status == http.StatusForbidden && e.Code == "ErrorAccessDenied":
		res.Access = AccessDenied
	case e.Code == "ErrorInvalidUser", e.Code == "MailboxNotEnabledForRESTAPI":
		res.Access = AccessNoMailbox
	default:
		res.Access = AccessUnknown
	}
	return res
}

// PolicyDenied reports whether a 403 came from an Application Access Policy
// or RBAC for Applications scope (the mailbox is excluded), as opposed to
// the token lacking Mail.Send.
func (e *Error) PolicyDenied() bool {
	return e.Code == "ErrorAccessDenied" && strings.Contains(strings.ToLower(e.Message), "odata is disabled")
}

// TokenError classifies a failure returned by a TokenSource from
// NewTokenSource or Credentials.NewTokens: the AADSTS code, Entra's message
// and the admin's fix, through the same classifier as delivery uses.
func TokenError(err error) *Error {
	if err == nil {
		return nil
	}
	return classify("token", "", nil, nil, err, false)
}

// TokenClaims are the claims of an app-only access token that say what the
// tenant granted. They are read for diagnosis only: graphrelay never
// verifies or relies on its own token, Graph does.
type TokenClaims struct {
	Audience string   `json:"aud"`
	AppID    string   `json:"appid"`
	TenantID string   `json:"tid"`
	Roles    []string `json:"roles"`
	// Scopes is set on delegated (user) tokens only; an app-only token
	// never has it.
	Scopes string `json:"scp"`
	// IDType is "app" for app-only tokens.
	IDType string `json:"idtyp"`
	// AppIDACR is "1" for a client secret, "2" for a certificate, "0" for
	// a managed identity or public client.
	AppIDACR  string `json:"appidacr"`
	ExpiresAt int64  `json:"exp"`
}

// Expiry returns the token's exp as a time.
func (c TokenClaims) Expiry() time.Time { return time.Unix(c.ExpiresAt, 0) }

// HasRole reports whether the token carries the application permission.
// Entra spells roles exactly as the permission is named.
func (c TokenClaims) HasRole(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// ParseTokenClaims decodes the payload of a JWT access token without
// verifying its signature. Errors never quote the token.
func ParseTokenClaims(token string) (TokenClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return TokenClaims{}, fmt.Errorf("the access token is not a JWT (%d parts instead of 3)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return TokenClaims{}, errors.New("the access token's payload is not base64url")
	}
	var c TokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return TokenClaims{}, errors.New("the access token's payload is not a JSON object of the expected claims")
	}
	return c, nil
}
