package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/doctor"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// checkSetup is a fake tenant with the app certificate registered and the
// YAML configuration file an admin would write for it.
func checkSetup(t *testing.T, fc graphtest.Config, mailboxes ...string) (*graphtest.Server, string) {
	t.Helper()
	cert := newAppCert(t, "graphrelay")
	fc.Certificates = []*x509.Certificate{cert.cert}
	fake := graphtest.New(t, fc)
	cfg := fakeConfig(fake, mailboxes...)
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	cfg.Delivery.LargeMessages = config.LargeReject
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "graphrelay.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	checkHTTPClient = fake.HTTPClient()
	t.Cleanup(func() { checkHTTPClient = nil })
	return fake, path
}

func runCheck(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("GRAPHRELAY_CONFIG", "")
	var out, errOut bytes.Buffer
	code := run(append([]string{"check"}, args...), &out, &errOut)
	if strings.Contains(out.String()+errOut.String(), "eyJ") {
		t.Errorf("the output contains a token:\n%s", out.String())
	}
	return code, out.String(), errOut.String()
}

// The status column is padded to four characters, so names line up.
var checkLineRE = regexp.MustCompile(`^(OK  |WARN|FAIL)  (\S+(?: \S+)?)  (.+)$`)

func TestCheckGoodSetup(t *testing.T) {
	fake, path := checkSetup(t, graphtest.Config{AccessPolicy: []string{"scans@contoso.com"}}, "scans@contoso.com")
	code, out, errOut := runCheck(t, "--config", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var steps []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		m := checkLineRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %q is not STATUS  name  detail", line)
		}
		if m[1] != "OK  " {
			t.Errorf("not OK: %s", line)
		}
		steps = append(steps, m[2])
	}
	want := "config credential clock token permissions access scans@contoso.com spool tls listener test"
	if strings.Join(steps, " ") != want {
		t.Errorf("steps %q, want %q", steps, want)
	}
	if len(fake.Deliveries()) != 0 {
		t.Error("check sent mail without --send-test")
	}
}

func TestCheckDeniedMailboxJSON(t *testing.T) {
	_, path := checkSetup(t, graphtest.Config{AccessPolicy: []string{"scans@contoso.com"}}, "scans@contoso.com", "alerts@contoso.com")
	code, out, _ := runCheck(t, "--config", path, "--json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 for a denied mailbox", code)
	}
	var results []map[string]string
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	var denied map[string]string
	for _, r := range results {
		for _, k := range []string{"step", "status", "detail", "fix"} {
			if _, ok := r[k]; !ok {
				t.Errorf("result without %q: %v", k, r)
			}
		}
		if r["step"] == "access alerts@contoso.com" {
			denied = r
		}
	}
	if denied == nil || denied["status"] != "FAIL" || !strings.Contains(denied["detail"], "Access to OData is disabled") ||
		!strings.Contains(denied["fix"], "mail-enabled security group") {
		t.Errorf("denied mailbox: %v", denied)
	}
}

func TestCheckTextShowsFixForFailures(t *testing.T) {
	_, path := checkSetup(t, graphtest.Config{Roles: []string{}}, "scans@contoso.com")
	code, out, _ := runCheck(t, "--config", path)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	want := "FAIL  permissions  the token has no application permissions: you granted Delegated permissions or did not grant admin consent"
	i := strings.Index(out, want)
	if i < 0 {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
	next := strings.SplitN(out[i:], "\n", 3)
	if len(next) < 2 || !strings.HasPrefix(next[1], "      fix: ") || !strings.Contains(next[1], "Grant admin consent") {
		t.Errorf("no fix line after the failure:\n%s", out)
	}
}

func TestCheckSendTest(t *testing.T) {
	fake, path := checkSetup(t, graphtest.Config{}, "scans@contoso.com", "alerts@contoso.com")
	code, out, errOut := runCheck(t, "--config", path, "--send-test", "admin@contoso.com", "--from", "alerts@contoso.com")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	ds := fake.Deliveries()
	if len(ds) != 1 || ds[0].Mailbox != "alerts@contoso.com" || ds[0].Message.Subject != doctor.TestSubject ||
		len(ds[0].Message.To) != 1 || ds[0].Message.To[0].Address != "admin@contoso.com" {
		t.Fatalf("deliveries %+v", ds)
	}
	if !strings.Contains(out, "OK    send-test alerts@contoso.com  Graph accepted the test message") {
		t.Errorf("output:\n%s", out)
	}
}

func TestCheckUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--send-test", "not an address"}, {"--send-test", "Admin <admin@contoso.com>"},
		{"--from", "scans@contoso.com"}, {"extra"}, {"--bogus"},
	} {
		if code, _, errOut := runCheck(t, args...); code != 2 || errOut == "" {
			t.Errorf("%q: exit %d, %q", args, code, errOut)
		}
	}
}

// A configuration that serve would refuse fails the check with every
// problem listed, and nothing is contacted.
func TestCheckBrokenConfiguration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("graph:\n  tenant_id: contoso.onmicrosoft.com\nmailboxes: [scans@contoso.com]\n"), 0o600)
	code, out, _ := runCheck(t, "--config", path)
	if code != 1 || !strings.HasPrefix(out, "FAIL  config  ") || !strings.Contains(out, "graph.client_id") ||
		!strings.Contains(out, "graph.credential") || strings.Count(out, "\nOK") != 0 {
		t.Errorf("exit %d:\n%s", code, out)
	}
}
