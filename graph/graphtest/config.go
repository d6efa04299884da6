package graphtest

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"
)

// Defaults used when the corresponding Config field is left zero.
const (
	DefaultTenantID        = "00000000-0000-4000-8000-0000000c0de5"
	DefaultClientID        = "11111111-2222-4333-8444-555555555555"
	DefaultTokenLifetime   = 3599 * time.Second
	DefaultMaxConcurrency  = 4
	DefaultMaxRequestBytes = 4_000_000
	DefaultGraphScope      = "https://graph.microsoft.com/.default"
	// DefaultThrottleRetryAfter is the Retry-After value sent with the
	// MailboxConcurrency 429. Graph does not document the value; one second
	// keeps retrying tests fast while still forcing clients to honour it.
	DefaultThrottleRetryAfter = "1"
)

// Config describes the tenant, the app registration and the mailboxes the
// fake serves. The zero value is usable: it gives an app with the Mail.Send
// role that may send from any mailbox.
type Config struct {
	TenantID     string                // default DefaultTenantID
	ClientID     string                // default DefaultClientID
	Certificates []*x509.Certificate   // registered app certificates (assertion auth)
	Secrets      []Secret              // registered client secrets
	Federated    []FederatedCredential // workload-identity federated credentials
	// Roles are the app roles put in issued tokens. nil means ["Mail.Send"];
	// an empty non-nil slice means the token carries no roles claim, which is
	// what Entra issues when admin consent is missing.
	Roles []string
	// Mailboxes are the known mailboxes. Empty means every address or GUID
	// is a known Exchange Online mailbox.
	Mailboxes []Mailbox
	// AccessPolicy is an Application Access Policy (RestrictAccess) allow
	// list of addresses or object ids, matched case-insensitively. nil allows
	// every mailbox.
	AccessPolicy []string
	// SendAs lists, per mailbox (address or object id), the extra From or
	// Sender addresses that mailbox may send as.
	SendAs map[string][]string
	// TokenLifetime is the lifetime of issued access tokens; default 3599s.
	TokenLifetime time.Duration
	// ClockSkew shifts the fake's clock relative to the real clock. It
	// affects Date headers, assertion nbf/exp checks, token exp and the
	// validation of tokens presented to Graph.
	ClockSkew time.Duration
	// MaxConcurrency is the number of in-flight Graph requests per mailbox
	// above which requests get 429 ApplicationThrottled; default 4.
	MaxConcurrency int
	// ThrottleRetryAfter is the Retry-After header of that 429; default "1".
	ThrottleRetryAfter string
	// Latency is added to every Graph API request (real Graph is ~150ms).
	Latency time.Duration
	// MaxRequestBytes is the Graph request body limit (413 beyond it);
	// default 4,000,000, Graph's "4 MB".
	MaxRequestBytes int
	// GraphScope is the scope the loopback token endpoint accepts; default
	// "https://graph.microsoft.com/.default". The loopback Graph listener
	// expects tokens whose aud is this scope without "/.default".
	GraphScope string
	// ArcTokenDir is where the Azure Arc endpoint writes its challenge key
	// files; default DefaultArcTokenDir, the only place Azure's SDKs read
	// them from.
	ArcTokenDir string
	// ArcKeyUnreadable makes the Azure Arc challenge name a key file the
	// client cannot read, as the real agent's is for a user outside the
	// himds group.
	ArcKeyUnreadable bool
}

// Secret is a registered client secret. Expired secrets are rejected with
// AADSTS7000222, as Entra does once a secret passes its end date.
type Secret struct {
	Value   string
	Expired bool
}

// Mailbox is a mailbox the fake knows. ID is the Entra object id; when empty
// a stable GUID is derived from Address. NoExchange marks a user without an
// Exchange Online mailbox (unlicensed or on-premises), which Graph answers
// with MailboxNotEnabledForRESTAPI.
type Mailbox struct {
	Address    string
	ID         string
	NoExchange bool
}

// FederatedCredential is a workload-identity federated credential on the app
// registration. The presented token's audience must be
// "api://AzureADTokenExchange", the only audience Entra allows by default.
type FederatedCredential struct {
	Issuer, Subject string
}

// withDefaults returns a copy of cfg with defaults filled in and every slice
// and map copied, so that later changes by the caller cannot race with the
// running server.
func (cfg Config) withDefaults() (Config, error) {
	out := cfg
	if out.TenantID == "" {
		out.TenantID = DefaultTenantID
	}
	if out.ClientID == "" {
		out.ClientID = DefaultClientID
	}
	if out.Roles == nil {
		out.Roles = []string{"Mail.Send"}
	} else {
		out.Roles = append([]string{}, out.Roles...)
	}
	if out.TokenLifetime <= 0 {
		out.TokenLifetime = DefaultTokenLifetime
	}
	if out.MaxConcurrency <= 0 {
		out.MaxConcurrency = DefaultMaxConcurrency
	}
	if out.ThrottleRetryAfter == "" {
		out.ThrottleRetryAfter = DefaultThrottleRetryAfter
	}
	if out.MaxRequestBytes <= 0 {
		out.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if out.GraphScope == "" {
		out.GraphScope = DefaultGraphScope
	}
	if !strings.HasSuffix(out.GraphScope, "/.default") || !strings.HasPrefix(out.GraphScope, "https://") {
		return Config{}, fmt.Errorf("graphtest: GraphScope %q must be an https resource followed by /.default", out.GraphScope)
	}
	out.Certificates = append([]*x509.Certificate{}, cfg.Certificates...)
	out.Secrets = append([]Secret{}, cfg.Secrets...)
	out.Federated = append([]FederatedCredential{}, cfg.Federated...)
	if cfg.AccessPolicy != nil {
		out.AccessPolicy = append([]string{}, cfg.AccessPolicy...)
	}
	out.Mailboxes = make([]Mailbox, 0, len(cfg.Mailboxes))
	for _, m := range cfg.Mailboxes {
		if m.Address == "" && m.ID == "" {
			return Config{}, fmt.Errorf("graphtest: a mailbox needs an Address or an ID")
		}
		if m.Address != "" && !validAddress(m.Address) {
			return Config{}, fmt.Errorf("graphtest: mailbox address %q is not a valid address", m.Address)
		}
		if m.ID == "" {
			m.ID = derivedGUID("mailbox", strings.ToLower(m.Address))
		}
		out.Mailboxes = append(out.Mailboxes, m)
	}
	out.SendAs = make(map[string][]string, len(cfg.SendAs))
	for k, v := range cfg.SendAs {
		out.SendAs[k] = append([]string{}, v...)
	}
	return out, nil
}

// graphResource is the audience of tokens the loopback Graph listener
// accepts: the configured scope without its "/.default" suffix.
func (cfg Config) graphResource() string {
	return strings.TrimSuffix(cfg.GraphScope, "/.default")
}
