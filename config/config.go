// Package config holds graphrelay's configuration: its types, the built-in
// defaults, loading from one YAML file and GRAPHRELAY_* environment
// variables, and validation that reports every problem at once. It has no
// behaviour of its own; the other packages read it once at wiring time.
package config

import "time"

// Config is the whole configuration file.
type Config struct {
	// DryRun writes every Graph request to OutboxDir instead of sending it.
	// It is forced on when no tenant is configured, so a newcomer can watch
	// what would leave before the tenant is ready.
	DryRun    bool   `yaml:"dry_run"`
	OutboxDir string `yaml:"outbox_dir"`

	Log      Log      `yaml:"log"`
	SMTP     SMTP     `yaml:"smtp"`
	TLS      TLS      `yaml:"tls"`
	Graph    Graph    `yaml:"graph"`
	Delivery Delivery `yaml:"delivery"`
	Queue    Queue    `yaml:"queue"`
	Admin    Admin    `yaml:"admin"`

	// Mailboxes are the only addresses graphrelay ever sends as. They mirror
	// the mail-enabled security group of the Exchange Application Access
	// Policy.
	Mailboxes []Mailbox `yaml:"mailboxes"`
	// DefaultMailbox is used when neither the header From nor the envelope
	// sender is one of Mailboxes.
	DefaultMailbox string `yaml:"default_mailbox"`

	// Rules decide, in order, which client may send as which mailbox; the
	// first match wins and no match means reject. With no rules, one
	// implicit rule applies: send as the sender when it is an allowed
	// mailbox, else as default_mailbox with the From rewritten.
	Rules []Rule `yaml:"rules"`

	// Users may authenticate with SMTP AUTH. Passwords are bcrypt hashes
	// made by "graphrelay passwd". UsersFile adds users from a separate
	// YAML file (a list of the same entries) that can be mounted as a
	// secret.
	Users     []User `yaml:"users"`
	UsersFile string `yaml:"users_file"`
	Auth      Auth   `yaml:"auth"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// SMTP configures the listeners and the limits of every SMTP session.
type SMTP struct {
	// Hostname is announced in the greeting and in EHLO replies.
	Hostname  string     `yaml:"hostname"`
	Listeners []Listener `yaml:"listeners"`
	// MaxMessageBytes defaults to 35 MB, Exchange Online's default maximum
	// message size, so mail that Exchange would refuse is refused at SMTP
	// time instead of being accepted and failing later.
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	// MaxRecipients defaults to 500, Graph's per-message default.
	MaxRecipients int `yaml:"max_recipients"`
	// MaxLineLength bounds every line, commands and message lines alike
	// (go-smtp applies one limit to both). RFC 5322 says 998, but legacy
	// applications write longer HTML lines, so the default is 10000; a
	// longer line is answered with 500 5.4.0 and the connection is closed.
	MaxLineLength int `yaml:"max_line_length"`
	// ReadTimeout bounds the wait for each command and, because go-smtp sets
	// the deadline once per command, the whole DATA transfer too.
	ReadTimeout     Duration `yaml:"read_timeout"`
	WriteTimeout    Duration `yaml:"write_timeout"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// QualifyDomain is given to header addresses without a domain ("From:
	// root"), as Postfix's append_at_myorigin does; "" uses the envelope
	// sender's domain.
	QualifyDomain string `yaml:"qualify_domain"`
}

// Listener is one SMTP listening socket.
type Listener struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	// TLS is none, starttls or implicit (SMTPS, port 465). starttls and
	// implicit need the tls section.
	TLS string `yaml:"tls"`
	// Networks are the client networks (CIDR) allowed to connect. The
	// default is loopback only; 0.0.0.0/0 must be written out.
	Networks []string `yaml:"networks"`
	// MaxConnections and MaxConnectionsPerIP bound concurrent sessions.
	MaxConnections      int `yaml:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// Auth is none, optional or required.
	Auth string `yaml:"auth"`
	// AllowInsecureAuth offers AUTH without TLS on a non-loopback listener,
	// for old devices that cannot do TLS. It is logged as a warning.
	AllowInsecureAuth bool `yaml:"allow_insecure_auth"`
}

// Listener TLS modes and AUTH requirements.
const (
	TLSNone      = "none"
	TLSStartTLS  = "starttls"
	TLSImplicit  = "implicit"
	AuthNone     = "none"
	AuthOptional = "optional"
	AuthRequired = "required"
)

// Admin configures the HTTP endpoint for /metrics, /healthz and /readyz.
type Admin struct {
	// Listen is host:port; loopback by default because the endpoint has no
	// authentication. Empty disables it.
	Listen string `yaml:"listen"`
	// Pprof serves Go's profiler under /debug/pprof/ on this endpoint, for
	// an admin profiling a live relay. Off by default: profiles reveal the
	// process's internals to whoever can reach the endpoint.
	Pprof bool `yaml:"pprof"`
}

// TLS configures the server certificate for STARTTLS and implicit TLS.
type TLS struct {
	// CertFile and KeyFile are reloaded on SIGHUP and when they change on
	// disk, so certificate renewals need no restart.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// SelfSigned generates a certificate at first start (kept in
	// SelfSignedDir) when no files are given: for LAN-only use.
	SelfSigned    bool   `yaml:"self_signed"`
	SelfSignedDir string `yaml:"self_signed_dir"`
	// MinVersion is 1.0, 1.1, 1.2 or 1.3. Lower than 1.2 is for old printers.
	MinVersion string `yaml:"min_version"`
	// LegacyCiphers adds CBC and 3DES suites some old devices need.
	LegacyCiphers bool `yaml:"legacy_ciphers"`
}

// Auth configures SMTP AUTH hardening.
type Auth struct {
	// FailureDelay is waited before every 535 reply, so timing does not
	// reveal which part of the credential was wrong.
	FailureDelay Duration `yaml:"failure_delay"`
	// After MaxFailures failures from one IP within Window, that IP is
	// refused for Lockout.
	MaxFailures int      `yaml:"max_failures"`
	Window      Duration `yaml:"window"`
	Lockout     Duration `yaml:"lockout"`
}

// User is one SMTP AUTH account.
type User struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"`
}

// From handling values for Rule.From.
const (
	FromKeep    = "keep"
	FromRewrite = "rewrite"
	FromReject  = "reject"
)

// MailboxSender in Rule.Mailbox means "the identity the rule verified, when
// it is an allowed mailbox": the authenticated user's own address, else the
// envelope sender the rule matched; never the header From.
const MailboxSender = "sender"

// Rule maps clients to a mailbox. Empty match fields match anything.
type Rule struct {
	Name       string   `yaml:"name"`
	Listener   string   `yaml:"listener"`
	Networks   []string `yaml:"networks"`
	AuthUser   string   `yaml:"auth_user"`   // a user name, or * for any authenticated user
	Sender     string   `yaml:"sender"`      // envelope sender pattern: address, *@domain or *
	HeaderFrom string   `yaml:"header_from"` // header From pattern, same forms
	// Mailbox is an allowed mailbox address, or "sender".
	Mailbox string `yaml:"mailbox"`
	From    string `yaml:"from"` // keep, rewrite or reject
	// Recipients restricts recipients to these addresses and domains
	// (alice@company.com, company.com or *@company.com); "*" allows all.
	// Empty means the mailboxes' own domains, never all.
	Recipients        []string `yaml:"recipients"`
	MaxRecipients     int      `yaml:"max_recipients"`
	MessagesPerMinute int      `yaml:"messages_per_minute"`
	Format            string   `yaml:"format"` // json or mime; empty means delivery.format
}

// Delivery configures how messages are handed to Graph.
type Delivery struct {
	// Mode is queue (store and forward, the default) or direct
	// (synchronous: 250 only after Graph's 202, no spool).
	Mode string `yaml:"mode"`
	// Format is json (convert to Graph's message) or mime (pass the original
	// MIME through).
	Format string `yaml:"format"`
	// LargeMessages is upload (draft plus upload sessions, needs
	// Mail.ReadWrite) or reject (552 at DATA).
	LargeMessages string `yaml:"large_messages"`
}

// Delivery modes and large-message handling.
const (
	ModeQueue   = "queue"
	ModeDirect  = "direct"
	LargeUpload = "upload"
	LargeReject = "reject"
	FormatJSON  = "json"
	FormatMIME  = "mime"
)

// Queue configures the durable spool and its delivery workers.
type Queue struct {
	Dir string `yaml:"dir"`
	// MaxBytes and MaxMessages are the spool quota; over it, new mail gets
	// 452 4.3.1. 0 means unlimited.
	MaxBytes    int64 `yaml:"max_bytes"`
	MaxMessages int   `yaml:"max_messages"`
	// Workers bounds the delivery attempts under way across all
	// mailboxes: those whose request is at Graph and those prepared ahead
	// (journal line on disk) waiting for their mailbox's request slot;
	// each mailbox's max_concurrency still bounds its requests. 0 means
	// the sum of the mailboxes' max_concurrency, at least 16
	// (queue.DefaultWorkers), so the default can use Graph's whole budget.
	Workers int `yaml:"workers"`
	// Retries back off exponentially with full jitter from RetryInitial up
	// to RetryMax; a message still undelivered after MaxAge fails.
	RetryInitial Duration `yaml:"retry_initial"`
	RetryMax     Duration `yaml:"retry_max"`
	MaxAge       Duration `yaml:"max_age"`
	// NoticeTo says who receives a notice, sent through Graph as
	// NoticeMailbox (or default_mailbox), for every dead letter: a
	// comma-separated list of addresses and the word "mailbox" (the mailbox
	// the message was to be sent as; the default); "none" or empty sends
	// no notices.
	NoticeTo      string `yaml:"notice_to"`
	NoticeMailbox string `yaml:"notice_mailbox"`
	// DelayNoticeAfter sends a "still trying" notice once; 0 disables it.
	DelayNoticeAfter Duration `yaml:"delay_notice_after"`
	// Backend is "local" (the spool in Dir; one host) or "jetstream" (a
	// NATS JetStream cluster shared by several relays; see JetStream).
	Backend   string    `yaml:"backend"`
	JetStream JetStream `yaml:"jetstream"`
}

// The words queue.notice_to takes besides addresses.
const (
	NoticeToMailbox = "mailbox"
	NoticeToNone    = "none"
)

// Credential kinds for Graph.Credential.
const (
	CredentialCertificate     = "certificate"
	CredentialSecret          = "secret"
	CredentialManagedIdentity = "managed_identity"
)

// Graph configures the tenant, the app registration and its credential.
type Graph struct {
	// Cloud selects the national cloud preset: global, usgov, dod or china.
	Cloud    string `yaml:"cloud"`
	TenantID string `yaml:"tenant_id"`
	ClientID string `yaml:"client_id"`
	// AuthorityURL and GraphURL override the cloud preset's hosts, for a
	// private endpoint such as a test fake on loopback. Scope overrides the
	// token scope, which otherwise follows the Graph host.
	AuthorityURL string `yaml:"authority_url"`
	GraphURL     string `yaml:"graph_url"`
	Scope        string `yaml:"scope"`

	// Credential is certificate, secret or managed_identity. Empty means
	// inferred from which credential settings are present.
	Credential string `yaml:"credential"`

	CertificateFile string `yaml:"certificate_file"`
	KeyFile         string `yaml:"key_file"`
	PFXFile         string `yaml:"pfx_file"`
	PFXPassword     Secret `yaml:"pfx_password"`
	PFXPasswordFile string `yaml:"pfx_password_file"`
	// AssertionAlg is PS256 (Entra's current recommendation, with x5t#S256)
	// or RS256 (legacy, with the SHA-1 x5t).
	AssertionAlg string `yaml:"assertion_alg"`
	SendX5C      bool   `yaml:"send_x5c"`

	ClientSecret     Secret `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`

	ManagedIdentityClientID string `yaml:"managed_identity_client_id"`
	IMDSEndpoint            string `yaml:"imds_endpoint"`
	FederatedTokenFile      string `yaml:"federated_token_file"`

	// CAFile adds PEM certificates to the trusted roots for Entra and Graph,
	// for networks that inspect TLS.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds one Graph or token HTTP exchange.
	Timeout         Duration `yaml:"timeout"`
	SaveToSentItems bool     `yaml:"save_to_sent_items"`
}

// Mailbox is one shared mailbox graphrelay may send as. ID is its Entra
// object id; when set, requests go to /users/{id}, as in Microsoft's Logic
// App guidance, and Address is still what the From header is compared with.
type Mailbox struct {
	Address string `yaml:"address"`
	ID      string `yaml:"id"`
	// MaxConcurrency bounds in-flight Graph requests for this mailbox;
	// Graph allows 4 per app and mailbox.
	MaxConcurrency int `yaml:"max_concurrency"`
	// MessagesPerMinute paces sends; Exchange Online allows about 30. 0
	// means no pacing.
	MessagesPerMinute int `yaml:"messages_per_minute"`
}

// Duration is a time.Duration written as "30s" or "10m" in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Secret is a string that never prints itself, so that logging a
// configuration value cannot leak it.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}
