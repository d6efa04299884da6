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

	Log   Log   `yaml:"log"`
	SMTP  SMTP  `yaml:"smtp"`
	Graph Graph `yaml:"graph"`

	// Mailboxes are the only addresses graphrelay ever sends as. They mirror
	// the mail-enabled security group of the Exchange Application Access
	// Policy.
	Mailboxes []Mailbox `yaml:"mailboxes"`
	// DefaultMailbox is used when neither the header From nor the envelope
	// sender is one of Mailboxes.
	DefaultMailbox string `yaml:"default_mailbox"`
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
	// ReadTimeout bounds the wait for each command and, because go-smtp sets
	// the deadline once per command, the whole DATA transfer too.
	ReadTimeout     Duration `yaml:"read_timeout"`
	WriteTimeout    Duration `yaml:"write_timeout"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Listener is one SMTP listening socket.
type Listener struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
}

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
