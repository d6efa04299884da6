package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Clouds lists the national cloud presets that graph.cloud accepts.
var Clouds = []string{"global", "usgov", "dod", "china"}

// DryRunReason says why the daemon runs in dry-run mode, or "" when it
// sends for real.
func (c *Config) DryRunReason() string {
	switch {
	case c.DryRun:
		return "dry_run is set"
	case strings.TrimSpace(c.Graph.TenantID) == "":
		return "no graph.tenant_id is configured"
	}
	return ""
}

// Validate checks cfg and returns every problem found. Settings that only
// matter for real delivery are checked only when not in dry-run mode.
func Validate(cfg *Config) Errors {
	var errs Errors
	validateLog(cfg, &errs)
	validateSMTP(cfg, &errs)
	validateMailboxes(cfg, &errs)
	validateListenerAccess(cfg, &errs)
	validateDelivery(cfg, &errs)
	if cfg.Admin.Listen != "" {
		if err := checkListenAddress(cfg.Admin.Listen); err != nil {
			errs.add("admin.listen", "%v", err)
		}
	}
	if cfg.DryRunReason() != "" {
		if strings.TrimSpace(cfg.OutboxDir) == "" {
			errs.add("outbox_dir", "is required in dry-run mode")
		}
		return errs
	}
	validateGraph(cfg, &errs)
	return errs
}

func validateLog(cfg *Config, errs *Errors) {
	switch strings.ToLower(cfg.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		errs.add("log.level", "must be debug, info, warn or error, not %q", cfg.Log.Level)
	}
	switch strings.ToLower(cfg.Log.Format) {
	case "text", "json":
	default:
		errs.add("log.format", "must be text or json, not %q", cfg.Log.Format)
	}
}

func validateSMTP(cfg *Config, errs *Errors) {
	s := &cfg.SMTP
	if len(s.Listeners) == 0 {
		errs.add("smtp.listeners", "at least one listener is required")
	}
	names := map[string]bool{}
	for i := range s.Listeners {
		l := &s.Listeners[i]
		key := fmt.Sprintf("smtp.listeners[%d]", i)
		if l.Name == "" {
			l.Name = fmt.Sprintf("listener%d", i+1)
		}
		if names[l.Name] {
			errs.add(key+".name", "listener name %q is used twice", l.Name)
		}
		names[l.Name] = true
		if err := checkListenAddress(l.Address); err != nil {
			errs.add(key+".address", "%v", err)
		}
	}
	if s.QualifyDomain != "" {
		if _, err := mailhdr.Canonical("x@" + s.QualifyDomain); err != nil || strings.HasPrefix(s.QualifyDomain, "[") {
			errs.add("smtp.qualify_domain", "must be a domain name such as host.example.com, not %q", s.QualifyDomain)
		}
	}
	if s.MaxMessageBytes <= 0 {
		errs.add("smtp.max_message_bytes", "must be positive")
	}
	if s.MaxRecipients <= 0 || s.MaxRecipients > 1000 {
		errs.add("smtp.max_recipients", "must be between 1 and 1000 (Graph's highest per-message limit), not %d", s.MaxRecipients)
	}
	if s.MaxLineLength < 1000 || s.MaxLineLength > 1<<20 {
		errs.add("smtp.max_line_length", "must be between 1000 (RFC 5321's 998 plus CRLF) and 1048576, not %d", s.MaxLineLength)
	}
	for key, d := range map[string]Duration{
		"smtp.read_timeout": s.ReadTimeout, "smtp.write_timeout": s.WriteTimeout, "smtp.shutdown_timeout": s.ShutdownTimeout,
	} {
		if d <= 0 {
			errs.add(key, "must be a positive duration")
		}
	}
}

func checkListenAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid listen address %q: use host:port, such as 0.0.0.0:25 or 127.0.0.1:2525", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid port %q in listen address %q", port, addr)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("listen host %q is not an IP address; bind to an address, such as 0.0.0.0 or 127.0.0.1", host)
	}
	return nil
}

func validateMailboxes(cfg *Config, errs *Errors) {
	if len(cfg.Mailboxes) == 0 {
		errs.add("mailboxes", "list at least one shared mailbox graphrelay may send as")
	}
	seen := map[string]bool{}
	for i := range cfg.Mailboxes {
		m := &cfg.Mailboxes[i]
		key := fmt.Sprintf("mailboxes[%d]", i)
		a, err := mail.ParseAddress(m.Address)
		if err != nil || a.Name != "" {
			errs.add(key, "%q is not a plain email address", m.Address)
			continue
		}
		m.Address = a.Address
		low := strings.ToLower(a.Address)
		if seen[low] {
			errs.add(key, "mailbox %s is listed twice", a.Address)
		}
		seen[low] = true
		if m.ID != "" && !guidRE.MatchString(m.ID) {
			errs.add(key+".id", "%q is not an Entra object id (a GUID such as 5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab)", m.ID)
		}
	}
	if cfg.DefaultMailbox == "" {
		return
	}
	if !seen[strings.ToLower(strings.TrimSpace(cfg.DefaultMailbox))] {
		errs.add("default_mailbox", "%s is not one of mailboxes; graphrelay only sends as listed mailboxes", cfg.DefaultMailbox)
	}
}

// reservedDomains can never receive or send real mail (RFC 2606), so a
// production configuration that still names one was not finished.
var reservedDomains = []string{"example.com", "example.net", "example.org", ".example", ".invalid", ".test"}

func validateGraph(cfg *Config, errs *Errors) {
	g := &cfg.Graph
	for i, m := range cfg.Mailboxes {
		d := strings.ToLower(m.Address[strings.LastIndex(m.Address, "@")+1:])
		for _, r := range reservedDomains {
			if d == r || (strings.HasPrefix(r, ".") && strings.HasSuffix(d, r)) {
				errs.add(fmt.Sprintf("mailboxes[%d]", i), "%s is in a reserved example domain; list your real shared mailboxes", m.Address)
			}
		}
	}
	if !contains(Clouds, strings.ToLower(g.Cloud)) {
		errs.add("graph.cloud", "must be one of %s, not %q", strings.Join(Clouds, ", "), g.Cloud)
	}
	if g.ClientID == "" && g.Credential != CredentialManagedIdentity {
		errs.add("graph.client_id", "is required: the Application (client) ID of the app registration")
	}
	checkURL(errs, "graph.authority_url", g.AuthorityURL)
	checkURL(errs, "graph.graph_url", g.GraphURL)
	if _, v := graphURLVersion(g.GraphURL); v != "" {
		errs.add("graph.graph_url", "%q ends in the API version /%s; give the base URL without it (graphrelay adds /v1.0 itself)", g.GraphURL, v)
	}
	switch strings.ToUpper(g.AssertionAlg) {
	case "PS256", "RS256":
	default:
		errs.add("graph.assertion_alg", "must be PS256 or RS256, not %q", g.AssertionAlg)
	}
	if g.Timeout <= 0 {
		errs.add("graph.timeout", "must be a positive duration")
	}
	checkReadable(errs, "graph.ca_file", g.CAFile)

	kind := g.CredentialKind()
	switch kind {
	case CredentialCertificate:
		if g.PFXFile != "" && g.CertificateFile != "" {
			errs.add("graph.pfx_file", "is set together with graph.certificate_file; use one of them")
		}
		checkReadable(errs, "graph.certificate_file", g.CertificateFile)
		checkReadable(errs, "graph.key_file", g.KeyFile)
		checkReadable(errs, "graph.pfx_file", g.PFXFile)
	case CredentialSecret:
		if g.ClientSecret == "" {
			errs.add("graph.client_secret", "is required for credential secret (or set graph.client_secret_file)")
		}
	case CredentialManagedIdentity:
		checkReadable(errs, "graph.federated_token_file", g.FederatedTokenFile)
	case "":
		errs.add("graph.credential", "no credential is configured: set graph.certificate_file (or graph.pfx_file), graph.client_secret, or credential: managed_identity")
	default:
		errs.add("graph.credential", "must be certificate, secret or managed_identity, not %q", g.Credential)
	}
}

// CredentialKind returns the configured credential, inferring it from the
// settings present when graph.credential is empty.
func (g *Graph) CredentialKind() string {
	if g.Credential != "" {
		return strings.ToLower(g.Credential)
	}
	switch {
	case g.CertificateFile != "" || g.PFXFile != "":
		return CredentialCertificate
	case g.ClientSecret != "":
		return CredentialSecret
	case g.FederatedTokenFile != "" || g.ManagedIdentityClientID != "":
		return CredentialManagedIdentity
	}
	return ""
}

func checkURL(errs *Errors, key, raw string) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		errs.add(key, "%q is not an absolute URL", raw)
		return
	}
	loopback := u.Hostname() == "localhost" || net.ParseIP(u.Hostname()).IsLoopback()
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
		errs.add(key, "%q must use https (plain http is allowed only on loopback)", raw)
	}
}

func checkReadable(errs *Errors, key, path string) {
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		errs.add(key, "cannot read %s: %v", path, unwrapPathError(err))
		return
	}
	f.Close()
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
