package doctor

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/queue"
)

func TestDoctorGoodSetup(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{
		Certificates: []*x509.Certificate{cert.cert},
		AccessPolicy: []string{scans, alerts},
	})
	results := runDoctor(t, fake, tenantConfig(t, fake, cert))
	want := []string{"config", "credential", "clock", "token", "permissions", "access " + scans, "access " + alerts, "spool", "tls", "listener test"}
	if got := names(results); !reflect.DeepEqual(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	for _, r := range results {
		if r.Status != OK {
			t.Errorf("%s: %s %s (fix: %s)", r.Name, r.Status, r.Detail, r.Fix)
		}
	}
	if Failed(results) {
		t.Error("Failed reports a failure")
	}
	expect(t, results, "credential", OK, "(SHA-1, as the portal's Certificates & secrets lists it), SHA-256 thumbprint", "")
	// Both digests, as the portal and AADSTS700027 show them.
	for _, r := range results {
		if r.Name == "credential" {
			sha1sum, sha256sum := sha1.Sum(cert.cert.Raw), sha256.Sum256(cert.cert.Raw)
			for _, want := range []string{fmt.Sprintf("Thumbprint %X", sha1sum), fmt.Sprintf("SHA-256 thumbprint %X", sha256sum)} {
				if !strings.Contains(r.Detail, want) {
					t.Errorf("credential detail %q lacks %q", r.Detail, want)
				}
			}
		}
	}
	expect(t, results, "permissions", OK, "roles Mail.Send (app "+fake.ClientID(), "")
	expect(t, results, "access "+scans, OK, "granted", "")
	// The probes reached Graph, and nothing was delivered.
	if n := len(fake.GraphRequests()); n != 2 {
		t.Errorf("%d Graph requests, want the 2 probes", n)
	}
	if ds := fake.Deliveries(); len(ds) != 0 {
		t.Fatalf("check delivered mail without --send-test: %+v", ds)
	}
}

func TestDoctorWrongCertificate(t *testing.T) {
	registered := newTestCert(t, "registered", time.Now().Add(365*24*time.Hour))
	used := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{registered.cert}})
	results := runDoctor(t, fake, tenantConfig(t, fake, used))
	expect(t, results, "credential", OK, "the key matches it", "")
	expect(t, results, "token", Fail, "AADSTS700027", "upload graphrelay's certificate (.cer)")
	expect(t, results, "permissions", Warn, "skipped", "token step")
	if !Failed(results) {
		t.Error("a wrong certificate is not a failure")
	}
	if n := len(fake.GraphRequests()); n != 0 {
		t.Errorf("%d Graph requests without a token", n)
	}
}

func TestDoctorExpiredSecret(t *testing.T) {
	const secret = "Zx8Q~expired.secret-value_0123456789abcdefg"
	fake := graphtest.New(t, graphtest.Config{Secrets: []graphtest.Secret{{Value: secret, Expired: true}}})
	cfg := tenantConfig(t, fake, nil)
	cfg.Graph.ClientSecretFile = filepath.Join(t.TempDir(), "secret")
	writeFile(t, cfg.Graph.ClientSecretFile, []byte(secret+"\n"), 0o600)
	results := runDoctor(t, fake, cfg)
	expect(t, results, "credential", OK, "expiry cannot be read from the secret itself", "")
	expect(t, results, "token", Fail, "AADSTS7000222", "client secret has expired")
	for _, r := range results {
		if strings.Contains(r.Detail+r.Fix, secret) {
			t.Errorf("%s prints the secret", r.Name)
		}
	}
}

func TestDoctorSecretIDInsteadOfValue(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	cfg := tenantConfig(t, fake, nil)
	cfg.Graph.ClientSecret = "6c0ae7b5-2a4e-4a0e-9bd2-2f0d1e5f3a11"
	results := runDoctor(t, fake, cfg)
	expect(t, results, "credential", Warn, "secret's ID", "Value")
	expect(t, results, "token", Fail, "AADSTS7000215", "Value, not its Secret ID")
}

func TestDoctorNoRoles(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}, Roles: []string{}})
	results := runDoctor(t, fake, tenantConfig(t, fake, cert))
	expect(t, results, "token", OK, "obtained an app-only token", "")
	expect(t, results, "permissions", Fail,
		"the token has no application permissions: you granted Delegated permissions or did not grant admin consent",
		"Grant admin consent")
	expect(t, results, "access", Warn, "skipped", "permissions step")
	if n := len(fake.GraphRequests()); n != 0 {
		t.Errorf("%d Graph requests although the token cannot send", n)
	}
}

func TestDoctorMailboxOutsidePolicy(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}, AccessPolicy: []string{scans}})
	results := runDoctor(t, fake, tenantConfig(t, fake, cert))
	expect(t, results, "access "+scans, OK, "granted", "")
	r := expect(t, results, "access "+alerts, Fail, "denied: HTTP 403 ErrorAccessDenied: Access to OData is disabled", "mail-enabled security group")
	if !strings.Contains(r.Fix, "hour") || !strings.Contains(r.Detail, "request-id") {
		t.Errorf("denied mailbox: %+v", r)
	}
	// The PowerShell that grants it, with the mailbox and the app's id.
	domain := alerts[strings.LastIndex(alerts, "@")+1:]
	for _, want := range []string{
		"Get-ApplicationAccessPolicy | Where-Object AppId -eq '" + fake.ClientID() + "'",
		"Add-DistributionGroupMember -Identity graphrelay-mailboxes@" + domain + " -Member " + alerts,
		"Test-ApplicationAccessPolicy -Identity " + alerts + " -AppId " + fake.ClientID(),
	} {
		if !strings.Contains(r.Fix, want) {
			t.Errorf("fix for a denied mailbox lacks %q:\n%s", want, r.Fix)
		}
	}
	if !Failed(results) {
		t.Error("a denied mailbox is not a failure")
	}
	if ds := fake.Deliveries(); len(ds) != 0 {
		t.Fatalf("delivered: %+v", ds)
	}
}

func TestDoctorUnknownMailboxByObjectID(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	const id = "5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab"
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert},
		Mailboxes: []graphtest.Mailbox{{Address: scans}, {Address: "legacy@contoso.com", NoExchange: true}}})
	cfg := tenantConfig(t, fake, cert)
	cfg.Mailboxes = []config.Mailbox{{Address: scans}, {Address: alerts, ID: id}, {Address: "legacy@contoso.com"}}
	results := runDoctor(t, fake, cfg)
	expect(t, results, "access "+alerts, Fail, "unknown mailbox (as object id "+id+"): HTTP 404 ErrorInvalidUser", "does not exist")
	expect(t, results, "access legacy@contoso.com", Fail, "MailboxNotEnabledForRESTAPI", "no Exchange Online mailbox")
}

func TestDoctorClockSkew(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	for _, tt := range []struct {
		skew   time.Duration
		status Status
		detail string
	}{
		{10 * time.Minute, Fail, "10m0s behind"},
		{-10 * time.Minute, Fail, "10m0s ahead of"},
		{2 * time.Minute, Warn, "2m0s behind"},
		{0, OK, "agrees"},
	} {
		t.Run(tt.skew.String(), func(t *testing.T) {
			fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}, ClockSkew: tt.skew})
			results := runDoctor(t, fake, tenantConfig(t, fake, cert))
			fix := ""
			if tt.status != OK {
				fix = "NTP"
			}
			// The Date header has one-second resolution and the local time
			// is taken halfway through an exchange that a busy machine
			// stretches, so the reported skew is compared within a few
			// seconds, and its direction exactly.
			detail := tt.detail
			if i := strings.Index(detail, "m0s "); i > 0 {
				r := expect(t, results, "clock", tt.status, detail[i+4:], fix)
				want, _ := time.ParseDuration(detail[:i+3])
				got, err := time.ParseDuration(strings.Fields(strings.TrimPrefix(r.Detail, "the local clock is "))[0])
				if err != nil || got < want-5*time.Second || got > want+5*time.Second {
					t.Errorf("clock: detail %q, want a skew of about %s", r.Detail, want)
				}
			} else {
				expect(t, results, "clock", tt.status, detail, fix)
			}
			if tt.status == Fail {
				// Entra refuses the assertion for the same reason.
				expect(t, results, "token", Fail, "AADSTS700024", "clock")
			} else {
				expect(t, results, "token", OK, "obtained", "")
			}
		})
	}
}

func TestDoctorSendTest(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := tenantConfig(t, fake, cert)
	cfg.Graph.SaveToSentItems = false
	results := runDoctor(t, fake, cfg, func(o *Options) { o.SendTest = "admin@contoso.com" })
	expect(t, results, "send-test "+scans, OK, "Graph accepted the test message to admin@contoso.com (request-id ", "")
	expect(t, results, "send-test "+alerts, OK, "Graph accepted", "")
	ds := fake.Deliveries()
	if len(ds) != 2 {
		t.Fatalf("%d deliveries, want one per mailbox", len(ds))
	}
	for i, d := range ds {
		m := d.Message
		if d.Mailbox != cfg.Mailboxes[i].Address || m.Subject != TestSubject || len(m.To) != 1 || m.To[0].Address != "admin@contoso.com" ||
			len(m.Cc)+len(m.Bcc) != 0 || d.SaveToSentItems || !strings.Contains(m.Body, "test-host") {
			t.Errorf("delivery %d: %+v", i, d)
		}
	}

	fake.Reset()
	results = runDoctor(t, fake, cfg, func(o *Options) { o.SendTest, o.SendFrom = "admin@contoso.com", "ALERTS@contoso.com" })
	expect(t, results, "send-test "+alerts, OK, "Graph accepted", "")
	if ds := fake.Deliveries(); len(ds) != 1 || ds[0].Mailbox != alerts {
		t.Errorf("--from: %+v", ds)
	}
	results = runDoctor(t, fake, cfg, func(o *Options) { o.SendTest, o.SendFrom = "admin@contoso.com", "other@contoso.com" })
	expect(t, results, "send-test", Fail, "not one of the configured mailboxes", "--from")
}

// The send test is definitive: it runs even where the probe said denied,
// and reports Graph's refusal.
func TestDoctorSendTestDenied(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}, AccessPolicy: []string{scans}})
	results := runDoctor(t, fake, tenantConfig(t, fake, cert), func(o *Options) { o.SendTest = "admin@contoso.com" })
	expect(t, results, "send-test "+alerts, Fail, "Access to OData is disabled", "mail-enabled security group")
	expect(t, results, "send-test "+scans, OK, "Graph accepted", "")
}

func TestDoctorDryRun(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	// No HTTP client: a dry run must not try to reach any tenant.
	results := Run(context.Background(), Options{SendTest: "admin@contoso.com"})
	want := []string{"config", "tenant", "send-test", "spool", "outbox", "tls", "listener local"}
	if got := names(results); !reflect.DeepEqual(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	expect(t, results, "config", OK, "built-in defaults", "")
	expect(t, results, "tenant", Warn, "dry-run mode (no graph.tenant_id is configured)", "graph.tenant_id")
	expect(t, results, "send-test", Warn, "no test message was sent", "")
	expect(t, results, "outbox", OK, "does not exist yet", "")
	if Failed(results) {
		t.Error("the default configuration fails")
	}
	if _, err := os.Stat(filepath.Join(dir, "outbox")); err == nil {
		t.Error("the check created the outbox directory")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the check left files behind: %v", entries)
	}
}

func TestDoctorConfigProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, path, []byte(`graph:
  tenant_id: contoso.onmicrosoft.com
  cloud: mars
mailboxes:
  - scans@example.com
smtp:
  listeners:
    - name: lan
      address: "0.0.0.0"
`), 0o600)
	results := Run(context.Background(), Options{ConfigPath: path})
	if len(results) != 1 {
		t.Fatalf("steps after a broken configuration: %v", names(results))
	}
	r := expect(t, results, "config", Fail, "problem(s):", "fix every problem")
	for _, want := range []string{"graph.cloud", "graph.client_id", "reserved example domain", "smtp.listeners[0].address", "graph.credential"} {
		if !strings.Contains(r.Detail, want) {
			t.Errorf("detail lacks %q:\n%s", want, r.Detail)
		}
	}
}

func TestDoctorRuleProblems(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := tenantConfig(t, fake, cert)
	cfg.Rules = []config.Rule{{Name: "scanners", Listener: "nope", Mailbox: scans, From: config.FromRewrite}}
	results := runDoctor(t, fake, cfg)
	expect(t, results, "config", Fail, `listener "nope" is not a configured listener`, "rules")
}

// TestDoctorRiskyRules: check warns about a rule open to any domain and a
// rule that trusts only a claimed sender, and passes a rule without
// recipients (it gets the mailboxes' domains).
func TestDoctorRiskyRules(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}, AccessPolicy: []string{scans, alerts}})
	cfg := tenantConfig(t, fake, cert)
	cfg.SMTP.Listeners[0].Networks = []string{"10.0.0.0/8"}
	cfg.Rules = []config.Rule{
		{Name: "scanners", Networks: []string{"10.1.0.0/16"}, Mailbox: scans, From: config.FromRewrite},
		{Name: "anywhere", Networks: []string{"10.2.0.0/16"}, Mailbox: alerts, From: config.FromRewrite, Recipients: []string{"*"}},
		{Name: "claims", Sender: alerts, Mailbox: config.MailboxSender, From: config.FromKeep},
	}
	results := runDoctor(t, fake, cfg)
	r := expect(t, results, "config", Warn, `rules[1] (anywhere): recipients "*" relays to any domain`, "recipients")
	if !strings.Contains(r.Detail, "rules[2] (claims) matches on the claimed envelope sender "+alerts) {
		t.Errorf("no warning about the claimed sender:\n%s", r.Detail)
	}
	if strings.Contains(r.Detail, "rules[0]") {
		t.Errorf("warning about a rule without recipients:\n%s", r.Detail)
	}
}

func TestDoctorCertificateExpiry(t *testing.T) {
	soon := newTestCert(t, "graphrelay", time.Now().Add(10*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{soon.cert}})
	results := runDoctor(t, fake, tenantConfig(t, fake, soon))
	expect(t, results, "credential", Warn, "(9 days)", "graphrelay keygen")
	expect(t, results, "token", OK, "obtained", "")

	expired := newTestCert(t, "graphrelay", time.Now().Add(-24*time.Hour))
	results = runDoctor(t, fake, tenantConfig(t, fake, expired))
	expect(t, results, "credential", Fail, "expired on", "graphrelay keygen")
	expect(t, results, "token", Warn, "skipped", "credential step")
}

func TestDoctorKeyMismatch(t *testing.T) {
	a := newTestCert(t, "a", time.Now().Add(365*24*time.Hour))
	b := newTestCert(t, "b", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{a.cert}})
	cfg := tenantConfig(t, fake, a)
	cfg.Graph.KeyFile = b.keyFile
	results := runDoctor(t, fake, cfg)
	expect(t, results, "credential", Fail, "does not match", "key made together with this certificate")
}

func TestDoctorKeyFileMode(t *testing.T) {
	if os.PathSeparator == '\\' {
		t.Skip("no Unix modes")
	}
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	if err := os.Chmod(cert.keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	results := runDoctor(t, fake, tenantConfig(t, fake, cert))
	expect(t, results, "credential", Warn, "mode 0644", "chmod 600")
}

func TestDoctorLargeMessagePermission(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	for _, tt := range []struct {
		large  string
		roles  []string
		status Status
		detail string
	}{
		{config.LargeUpload, []string{"Mail.Send"}, Warn, "Mail.ReadWrite is missing"},
		{config.LargeUpload, []string{"Mail.Send", "Mail.ReadWrite"}, OK, "roles Mail.ReadWrite, Mail.Send"},
		{config.LargeReject, []string{"Mail.Send", "Mail.ReadWrite"}, Warn, "granted but unused"},
		{config.LargeReject, []string{"Mail.ReadWrite"}, Fail, "Mail.Send is missing"},
	} {
		t.Run(tt.large+strings.Join(tt.roles, "+"), func(t *testing.T) {
			fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}, Roles: tt.roles})
			cfg := tenantConfig(t, fake, cert)
			cfg.Delivery.LargeMessages = tt.large
			results := runDoctor(t, fake, cfg)
			expect(t, results, "permissions", tt.status, tt.detail, "")
		})
	}
}

func TestDoctorTokenEndpointDown(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	fake.SetTokenOutage(http.StatusServiceUnavailable)
	results := runDoctor(t, fake, tenantConfig(t, fake, cert))
	expect(t, results, "token", Fail, "HTTP", "temporary failure")
}

func TestDoctorGraphThrottledIsInconclusive(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	fake.FailGraph(graphtest.Fault{Mailbox: alerts, Status: http.StatusServiceUnavailable})
	results := runDoctor(t, fake, tenantConfig(t, fake, cert))
	expect(t, results, "access "+alerts, Warn, "could not tell", "again later")
	if Failed(results) {
		t.Error("an inconclusive probe is a failure")
	}
}

func TestDoctorListenerInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	cfg := config.Default()
	cfg.OutboxDir = t.TempDir()
	cfg.SMTP.Listeners = []config.Listener{{Name: "lan", Address: held.Addr().String()}}
	results := Run(context.Background(), Options{ConfigPath: writeConfig(t, cfg)})
	expect(t, results, "listener lan", Warn, "in use (is graphrelay running?)", "ss -ltnp")
}

func TestDoctorSpoolProblems(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})

	cfg := tenantConfig(t, fake, cert)
	cfg.Queue.Dir = cert.certFile // a file, not a directory
	expect(t, runDoctor(t, fake, cfg), "spool", Fail, "is not a directory", "queue.dir")

	cfg = tenantConfig(t, fake, cert)
	cfg.Queue.Dir = filepath.Join(t.TempDir(), "new", "spool")
	expect(t, runDoctor(t, fake, cfg), "spool", OK, "does not exist yet", "")
	if _, err := os.Stat(cfg.Queue.Dir); err == nil {
		t.Error("the check created the spool")
	}

	// An existing spool: its lock is tried (flock, LockFileEx), and then
	// found held while a Queue runs on it.
	cfg = tenantConfig(t, fake, cert)
	expect(t, runDoctor(t, fake, cfg), "spool", OK, "its lock can be taken", "")
	q, err := queue.Open(queue.Options{Dir: cfg.Queue.Dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, runDoctor(t, fake, cfg), "spool", OK, "a running graphrelay holds its lock", "")
	q.Close(context.Background())

	if os.PathSeparator != '\\' {
		cfg = tenantConfig(t, fake, cert)
		if err := os.Chmod(cfg.Queue.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		expect(t, runDoctor(t, fake, cfg), "spool", Warn, "lets other users read spooled mail", "chmod 700")
	}
}

func TestDoctorTLS(t *testing.T) {
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	server := newTestCert(t, "relay.contoso.com", time.Now().Add(365*24*time.Hour))
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})

	cfg := tenantConfig(t, fake, cert)
	cfg.SMTP.Hostname = "relay.contoso.com"
	cfg.SMTP.Listeners[0].TLS = config.TLSStartTLS
	cfg.TLS.CertFile, cfg.TLS.KeyFile = server.certFile, server.keyFile
	expect(t, runDoctor(t, fake, cfg), "tls", OK, "CN=relay.contoso.com", "")

	cfg.SMTP.Hostname = "smtp.fabrikam.com"
	expect(t, runDoctor(t, fake, cfg), "tls", Warn, "does not name smtp.hostname", "issue the certificate for smtp.fabrikam.com")

	cfg = tenantConfig(t, fake, cert)
	cfg.SMTP.Listeners[0].TLS = config.TLSImplicit
	cfg.TLS.SelfSigned, cfg.TLS.SelfSignedDir = true, filepath.Join(t.TempDir(), "tls")
	expect(t, runDoctor(t, fake, cfg), "tls", OK, "will be generated", "")
	if _, err := os.Stat(cfg.TLS.SelfSignedDir); err == nil {
		t.Error("the check generated the self-signed certificate")
	}
}

// A world-readable configuration with an inline secret is a WARN of its
// own, naming the fix.
func TestDoctorInlineSecretInReadableConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graphrelay.yaml")
	writeFile(t, path, []byte("graph:\n  client_secret: s3cret-value\n"), 0o644)
	results := Run(context.Background(), Options{ConfigPath: path})
	r := expect(t, results, "secrets", Warn, "readable by every local user (mode 0644) and holds graph.client_secret inline", "_file")
	if strings.Contains(r.Detail, "s3cret-value") {
		t.Errorf("the secret is printed: %s", r.Detail)
	}
	writeFile(t, path, []byte("graph:\n  client_secret: s3cret-value\n"), 0o640)
	for _, r := range Run(context.Background(), Options{ConfigPath: path}) {
		if r.Name == "secrets" {
			t.Errorf("a private configuration file reported: %+v", r)
		}
	}
}

// Direct mode needs somewhere to stage each message; check tests it.
func TestDoctorDirectModeStaging(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Delivery.Mode = config.ModeDirect
	cfg.Queue.Dir = filepath.Join(dir, "spool")
	results := Run(context.Background(), Options{ConfigPath: writeConfig(t, cfg)})
	expect(t, results, "spool", OK, "direct mode stages each message in "+filepath.Join(dir, "spool", "direct"), "")

	// A queue.dir that cannot be a directory: every message would get 451.
	blocker := filepath.Join(dir, "file")
	writeFile(t, blocker, []byte("x"), 0o600)
	cfg.Queue.Dir = filepath.Join(blocker, "spool")
	results = Run(context.Background(), Options{ConfigPath: writeConfig(t, cfg)})
	expect(t, results, "spool", Fail, "direct mode stages each message in", "queue.dir")
}

// On an Azure Arc-enabled server whose agent key graphrelay's user cannot
// read, the token step says to join the himds group, not that the endpoint
// did not answer.
func TestDoctorArcKeyUnreadable(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{ArcKeyUnreadable: true})
	fake.SetHostEnv(t, "arc")
	cfg := tenantConfig(t, fake, nil)
	cfg.Graph.ClientID = ""
	cfg.Graph.Credential = config.CredentialManagedIdentity
	results := runDoctor(t, fake, cfg)
	expect(t, results, "credential", OK, "Azure Arc-enabled server", "")
	expect(t, results, "token", Fail, "azcmagent", "usermod -aG himds graphrelay")
}
