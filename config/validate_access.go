package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"strings"
)

// Defaults applied per list entry, where YAML defaults cannot reach.
const (
	DefaultMaxConnections      = 100
	DefaultMaxConnectionsPerIP = 20
	DefaultMailboxConcurrency  = 4
)

// LoopbackNetworks is where a listener accepts clients from unless told
// otherwise, so a fresh install is never an open relay.
var LoopbackNetworks = []string{"127.0.0.0/8", "::1/128"}

// validateListenerAccess fills per-listener defaults and checks the TLS,
// AUTH and network settings.
func validateListenerAccess(cfg *Config, errs *Errors) {
	needTLS := false
	for i := range cfg.SMTP.Listeners {
		l := &cfg.SMTP.Listeners[i]
		key := fmt.Sprintf("smtp.listeners[%d]", i)
		if l.TLS == "" {
			l.TLS = TLSNone
		}
		if l.Auth == "" {
			l.Auth = AuthNone
		}
		if len(l.Networks) == 0 {
			l.Networks = append([]string(nil), LoopbackNetworks...)
		}
		if l.MaxConnections == 0 {
			l.MaxConnections = DefaultMaxConnections
		}
		if l.MaxConnectionsPerIP == 0 {
			l.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
		}
		switch l.TLS {
		case TLSNone:
		case TLSStartTLS, TLSImplicit:
			needTLS = true
		default:
			errs.add(key+".tls", "must be none, starttls or implicit, not %q", l.TLS)
		}
		switch l.Auth {
		case AuthNone, AuthOptional, AuthRequired:
		default:
			errs.add(key+".auth", "must be none, optional or required, not %q", l.Auth)
		}
		if l.Auth == AuthRequired && l.TLS == TLSNone && !l.AllowInsecureAuth && !isLoopbackListener(l.Address) {
			errs.add(key+".auth", "AUTH is required but the listener has no TLS; set tls: starttls or implicit, or allow_insecure_auth: true for devices that cannot do TLS")
		}
		for j, n := range l.Networks {
			if _, err := ParseNetwork(n); err != nil {
				errs.add(fmt.Sprintf("%s.networks[%d]", key, j), "%v", err)
			}
		}
		if l.MaxConnections < 0 || l.MaxConnectionsPerIP < 0 || l.MaxConnectionsPerIP > l.MaxConnections {
			errs.add(key+".max_connections_per_ip", "must be between 1 and max_connections (%d)", l.MaxConnections)
		}
	}
	t := &cfg.TLS
	switch t.MinVersion {
	case "1.0", "1.1", "1.2", "1.3":
	default:
		errs.add("tls.min_version", "must be 1.0, 1.1, 1.2 or 1.3, not %q", t.MinVersion)
	}
	if needTLS && t.CertFile == "" && !t.SelfSigned {
		errs.add("tls.cert_file", "a listener uses TLS: set tls.cert_file and tls.key_file, or tls.self_signed: true for LAN-only use")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs.add("tls.key_file", "tls.cert_file and tls.key_file go together")
	}
	checkReadable(errs, "tls.cert_file", t.CertFile)
	checkReadable(errs, "tls.key_file", t.KeyFile)
	checkReadable(errs, "users_file", cfg.UsersFile)
	for i, u := range cfg.Users {
		key := fmt.Sprintf("users[%d]", i)
		if u.Name == "" {
			errs.add(key+".name", "is required")
		}
		if !strings.HasPrefix(u.PasswordHash, "$2a$") && !strings.HasPrefix(u.PasswordHash, "$2b$") && !strings.HasPrefix(u.PasswordHash, "$2y$") {
			errs.add(key+".password_hash", "must be a bcrypt hash made by graphrelay passwd; plain-text passwords are not accepted")
		}
	}
	a := &cfg.Auth
	if a.MaxFailures < 1 || a.Window <= 0 || a.Lockout <= 0 || a.FailureDelay < 0 {
		errs.add("auth", "max_failures, window and lockout must be positive and failure_delay not negative")
	}
}

func validateDelivery(cfg *Config, errs *Errors) {
	d := &cfg.Delivery
	if d.Mode != ModeQueue && d.Mode != ModeDirect {
		errs.add("delivery.mode", "must be queue or direct, not %q", d.Mode)
	}
	if d.Format != FormatJSON && d.Format != FormatMIME {
		errs.add("delivery.format", "must be json or mime, not %q", d.Format)
	}
	if d.LargeMessages != LargeUpload && d.LargeMessages != LargeReject {
		errs.add("delivery.large_messages", "must be upload or reject, not %q", d.LargeMessages)
	}
	q := &cfg.Queue
	validateQueueBackend(cfg, errs)
	if d.Mode == ModeQueue && q.Backend != BackendJetStream && strings.TrimSpace(q.Dir) == "" {
		errs.add("queue.dir", "is required in queue mode")
	}
	if q.Workers < 0 {
		errs.add("queue.workers", "must be at least 1, or 0 for the sum of the mailboxes' max_concurrency")
	}
	if q.RetryInitial <= 0 || q.RetryMax < q.RetryInitial || q.MaxAge <= 0 {
		errs.add("queue.retry_initial", "retries need 0 < retry_initial <= retry_max and a positive max_age")
	}
	for _, to := range strings.Split(q.NoticeTo, ",") {
		if to = strings.TrimSpace(to); to != "" && !strings.EqualFold(to, NoticeToMailbox) && !strings.EqualFold(to, NoticeToNone) {
			if a, err := mail.ParseAddress(to); err != nil || a.Name != "" {
				errs.add("queue.notice_to", "%q is not a plain email address (a comma-separated list is allowed)", to)
			}
		}
	}
	if q.NoticeMailbox != "" {
		found := false
		for _, m := range cfg.Mailboxes {
			found = found || strings.EqualFold(m.Address, strings.TrimSpace(q.NoticeMailbox))
		}
		if !found {
			errs.add("queue.notice_mailbox", "%s is not one of mailboxes; notices are sent as a listed mailbox", q.NoticeMailbox)
		}
	}
	if q.NoticeTo != "" && !strings.EqualFold(q.NoticeTo, NoticeToNone) && q.NoticeMailbox == "" && cfg.DefaultMailbox == "" && len(cfg.Mailboxes) == 0 {
		errs.add("queue.notice_mailbox", "set it (or default_mailbox) so notices have a mailbox to leave from")
	}
	if q.MaxBytes < 0 || q.MaxMessages < 0 {
		errs.add("queue.max_bytes", "quotas cannot be negative (0 means unlimited)")
	}
	for i := range cfg.Mailboxes {
		m := &cfg.Mailboxes[i]
		if m.MaxConcurrency == 0 {
			m.MaxConcurrency = DefaultMailboxConcurrency
		}
		if m.MaxConcurrency < 0 || m.MessagesPerMinute < 0 {
			errs.add(fmt.Sprintf("mailboxes[%d]", i), "max_concurrency and messages_per_minute cannot be negative")
		}
	}
}

// ParseNetwork parses a CIDR, or a single address as a /32 or /128.
func ParseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not a network in CIDR form (such as 192.168.10.0/24) or an IP address", s)
}

func isLoopbackListener(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}
