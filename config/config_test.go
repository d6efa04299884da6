package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsDryRun(t *testing.T) {
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatalf("built-in defaults must validate: %v", err)
	}
	if got := cfg.DryRunReason(); got != "no graph.tenant_id is configured" {
		t.Errorf("DryRunReason = %q", got)
	}
	if cfg.SMTP.MaxMessageBytes != 35*1024*1024 || cfg.SMTP.MaxRecipients != 500 {
		t.Errorf("limits = %d bytes, %d rcpts; want Exchange's 35 MB and Graph's 500", cfg.SMTP.MaxMessageBytes, cfg.SMTP.MaxRecipients)
	}
	if cfg.SMTP.Listeners[0].Address != "127.0.0.1:2525" {
		t.Errorf("default listener %q must be loopback only", cfg.SMTP.Listeners[0].Address)
	}
}

func TestLoadProduction(t *testing.T) {
	cfg, err := Load("testdata/production.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DryRunReason() != "" {
		t.Errorf("a configured tenant must not be dry-run")
	}
	if cfg.Graph.CredentialKind() != CredentialCertificate {
		t.Errorf("credential inferred as %q", cfg.Graph.CredentialKind())
	}
	if cfg.Mailboxes[1].ID != "5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab" || cfg.Mailboxes[0].Address != "alerts@company.com" {
		t.Errorf("mailboxes = %+v", cfg.Mailboxes)
	}
	if cfg.SMTP.ReadTimeout.D() != 10*time.Minute {
		t.Errorf("defaults must survive a file that does not set them; read_timeout = %v", cfg.SMTP.ReadTimeout.D())
	}
}

func TestUnknownKeyIsAnErrorWithLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("graph:\n  tenant_id: x\n  tennant: y\n"), 0o600)
	_, err := Load(path, nil)
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "unknown key tennant") {
		t.Fatalf("err = %v; want the unknown key and its line", err)
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	_, err := Load("testdata/broken.yaml", nil)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v (%T), want Errors", err, err)
	}
	want := map[string]int{
		"smtp.listeners[0].address": 3,
		"smtp.max_recipients":       4,
		"graph.certificate_file":    7,
		"graph.assertion_alg":       8,
		"mailboxes[1].id":           12,
		"default_mailbox":           13,
		"graph.client_id":           0,
	}
	got := map[string]int{}
	for _, e := range errs {
		got[e.Key] = e.Line
	}
	for k, line := range want {
		l, ok := got[k]
		if !ok {
			t.Errorf("missing problem for %s; got %v", k, errs)
			continue
		}
		if l != line {
			t.Errorf("%s reported at line %d, want %d", k, l, line)
		}
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s3cr3t-value\n"), 0o600)
	env := []string{
		"GRAPHRELAY_GRAPH_TENANT_ID=fabrikam.onmicrosoft.com",
		"GRAPHRELAY_GRAPH_CLIENT_ID=app",
		"GRAPHRELAY_GRAPH_CLIENT_SECRET_FILE=" + secret,
		"GRAPHRELAY_MAILBOXES=alerts@fabrikam.com, scans@fabrikam.com=5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab",
		"GRAPHRELAY_DEFAULT_MAILBOX=alerts@fabrikam.com",
		"GRAPHRELAY_SMTP_LISTENERS=lan=0.0.0.0:25,127.0.0.1:2525",
		"GRAPHRELAY_SMTP_READ_TIMEOUT=90s",
		"PATH=/usr/bin",
	}
	cfg, err := Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Graph.TenantID != "fabrikam.onmicrosoft.com" || cfg.Graph.ClientSecret != "s3cr3t-value" {
		t.Errorf("graph = %+v", cfg.Graph)
	}
	if cfg.Graph.CredentialKind() != CredentialSecret {
		t.Errorf("credential = %s", cfg.Graph.CredentialKind())
	}
	if len(cfg.Mailboxes) != 2 || cfg.Mailboxes[1].ID == "" {
		t.Errorf("mailboxes = %+v", cfg.Mailboxes)
	}
	if len(cfg.SMTP.Listeners) != 2 || cfg.SMTP.Listeners[0].Name != "lan" || cfg.SMTP.Listeners[1].Name != "listener2" {
		t.Errorf("listeners = %+v", cfg.SMTP.Listeners)
	}
	if cfg.SMTP.ReadTimeout.D() != 90*time.Second {
		t.Errorf("read_timeout = %v", cfg.SMTP.ReadTimeout.D())
	}
}

func TestNonSettingVariablesIgnored(t *testing.T) {
	if _, err := Load("", []string{"GRAPHRELAY_CONFIG=/etc/x.yaml", "GRAPHRELAY_CORPUS=/c", "GRAPHRELAY_REQUIRE_CLIENTS=1", "GRAPHRELAY_SENDMAIL_SERVER=127.0.0.1:25"}); err != nil {
		t.Fatalf("variables that are not settings were rejected: %v", err)
	}
}

func TestUnknownEnvironmentVariable(t *testing.T) {
	_, err := Load("", []string{"GRAPHRELAY_GRAPH_TENNANT=x"})
	if err == nil || !strings.Contains(err.Error(), "GRAPHRELAY_GRAPH_TENNANT") {
		t.Fatalf("err = %v", err)
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	cfg := Default()
	cfg.Graph.ClientSecret = "super-secret"
	cfg.Graph.PFXPassword = "pfx-pass"
	b, _ := json.Marshal(cfg.Redacted())
	s := string(b)
	if strings.Contains(s, "super-secret") || strings.Contains(s, "pfx-pass") {
		t.Fatalf("secret leaked: %s", s)
	}
	if !strings.Contains(s, `"client_secret":"[redacted]"`) || !strings.Contains(s, `"read_timeout":"10m0s"`) {
		t.Fatalf("redacted config lacks expected keys: %s", s)
	}
	if cfg.Graph.ClientSecret != "super-secret" {
		t.Fatal("Redacted must not modify the configuration")
	}
}

// TestQualifyDomain: smtp.qualify_domain comes from the environment like
// every key, and only a host name is accepted.
func TestQualifyDomain(t *testing.T) {
	cfg, err := Load("", []string{"GRAPHRELAY_SMTP_QUALIFY_DOMAIN=host.example"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMTP.QualifyDomain != "host.example" {
		t.Errorf("qualify_domain = %q", cfg.SMTP.QualifyDomain)
	}
	for _, bad := range []string{"host.example.", "@host.example", "ho st", "[192.0.2.1]", "ｈｏｓｔ.example"} {
		_, err := Load("", []string{"GRAPHRELAY_SMTP_QUALIFY_DOMAIN=" + bad})
		var errs Errors
		if !errors.As(err, &errs) || !strings.Contains(err.Error(), "smtp.qualify_domain") {
			t.Errorf("qualify_domain %q: err = %v", bad, err)
		}
	}
}

// A graph_url copied with its API version (as Graph Explorer shows it) is
// the base URL at load; built in code, it is refused.
func TestGraphURLVersionNormalised(t *testing.T) {
	for _, raw := range []string{"https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/v1.0/", "https://graph.microsoft.com/beta", "https://graph.microsoft.com/"} {
		path := filepath.Join(t.TempDir(), "graphrelay.yaml")
		yaml := "graph:\n  tenant_id: 72aa88bf-76f0-494f-91ab-2d7cd730db47\n  client_id: 97e0a5b7-d745-40b6-94fe-5f77d35c6e05\n  client_secret: s3cret-value\n  graph_url: " + raw + "\nmailboxes: [alerts@company.com]\ndefault_mailbox: alerts@company.com\n"
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path, nil)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if cfg.Graph.GraphURL != "https://graph.microsoft.com" {
			t.Errorf("%s loaded as %q", raw, cfg.Graph.GraphURL)
		}
	}
	cfg := Default()
	cfg.Graph.TenantID, cfg.Graph.ClientID, cfg.Graph.ClientSecret = "72aa88bf-76f0-494f-91ab-2d7cd730db47", "97e0a5b7-d745-40b6-94fe-5f77d35c6e05", "s3cret-value"
	cfg.Mailboxes, cfg.DefaultMailbox = []Mailbox{{Address: "alerts@company.com"}}, "alerts@company.com"
	cfg.Graph.GraphURL = "https://graph.microsoft.com/v1.0"
	if errs := Validate(cfg); !strings.Contains(fmt.Sprint(errs), "API version") {
		t.Errorf("Validate of a graph_url with /v1.0 = %v", errs)
	}
}

// The effective configuration reads as key=value in a text log, secrets
// redacted, and nests in a JSON log.
func TestConfigLogValue(t *testing.T) {
	cfg := Default()
	cfg.Graph.TenantID = "72aa88bf-76f0-494f-91ab-2d7cd730db47"
	cfg.Graph.ClientSecret = "s3cret-value"
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("starting", "config", cfg)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("starting", "config", cfg)
	for _, want := range []string{"config.graph.tenant_id=72aa88bf-76f0-494f-91ab-2d7cd730db47", "config.graph.client_secret=[redacted]",
		"config.smtp.listeners.0.address=127.0.0.1:2525", "config.delivery.mode=queue"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text log lacks %s:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), "map[") || strings.Contains(text.String()+js.String(), "s3cret-value") {
		t.Errorf("text log:\n%s\njson log:\n%s", text.String(), js.String())
	}
	var doc struct {
		Config struct {
			Graph struct {
				TenantID string `json:"tenant_id"`
			} `json:"graph"`
		} `json:"config"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil || doc.Config.Graph.TenantID != cfg.Graph.TenantID {
		t.Errorf("json log %s: %v", js.String(), err)
	}
}

// A secret written in a configuration file that every local user can read
// is reported; one in a private file, or in *_file, is not.
func TestInlineSecretExposure(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inline := "graph:\n  client_secret: s3cret-value\n"
	for _, tc := range []struct {
		path string
		want bool
	}{
		{write("open.yaml", inline, 0o644), true},
		{write("private.yaml", inline, 0o640), false},
		{write("file.yaml", "graph:\n  client_secret_file: /etc/graphrelay/secret\n", 0o644), false},
		{write("pfx.yaml", "graph:\n  pfx_file: /etc/graphrelay/app.pfx\n  pfx_password: pw\n", 0o604), true},
	} {
		got := InlineSecretExposure(tc.path)
		if (got != "") != tc.want {
			t.Errorf("%s: %q, want a report: %v", tc.path, got, tc.want)
		}
		if got != "" && (!strings.Contains(got, "_file") || strings.Contains(got, "s3cret-value")) {
			t.Errorf("report %q", got)
		}
	}
}
