package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

var pdfBytes = []byte("%PDF-1.4\n% graphrelay test attachment\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
var pngBytes = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1}

// scanMessage is what an MFP sends: a header To with a stranger who is
// not in the envelope, a Cc, an HTML body with an inline logo, and a PDF.
func scanMessage(from string) string {
	return crlf(fmt.Sprintf(`From: "MFP 2nd floor" <%s>
To: Alice Example <alice@company.com>, Stranger <stranger@elsewhere.com>
Cc: Bob <bob@company.com>
Reply-To: helpdesk@company.com
Subject: =?UTF-8?Q?Scan_r=C3=A9sum=C3=A9_=E2=82=AC?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed"

--mixed
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

<html><body><p>Caf=E9 scan attached.</p><img src=3D"cid:logo@mfp"></body></html>
--rel
Content-Type: image/png
Content-ID: <logo@mfp>
Content-Disposition: attachment; filename="logo.png"
Content-Transfer-Encoding: base64

%s
--rel--
--mixed
Content-Type: application/pdf; name="scan.pdf"
Content-Disposition: attachment; filename*=UTF-8''r%%C3%%A9sum%%C3%%A9.pdf
Content-Transfer-Encoding: base64

%s
--mixed--
`, from, base64.StdEncoding.EncodeToString(pngBytes), base64.StdEncoding.EncodeToString(pdfBytes)))
}

func addrs(as []graphtest.Address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Address
	}
	sort.Strings(out)
	return out
}

func checkScanDelivery(t *testing.T, d graphtest.Delivery, mailbox string) {
	t.Helper()
	m := d.Message
	if d.Mailbox != mailbox {
		t.Errorf("sent as %q, want %q", d.Mailbox, mailbox)
	}
	if m.Subject != "Scan résumé €" {
		t.Errorf("subject = %q", m.Subject)
	}
	if m.BodyType != "html" || !strings.Contains(m.Body, "Café scan attached") || !strings.Contains(m.Body, `src="cid:logo@mfp"`) {
		t.Errorf("body (%s) = %q", m.BodyType, m.Body)
	}
	if got := addrs(m.To); strings.Join(got, ",") != "alice@company.com" {
		t.Errorf("to = %v; a header address outside the envelope must receive nothing", got)
	}
	if got := addrs(m.Cc); strings.Join(got, ",") != "bob@company.com" {
		t.Errorf("cc = %v", got)
	}
	if got := addrs(m.Bcc); strings.Join(got, ",") != "archive@company.com" {
		t.Errorf("bcc = %v; the envelope-only recipient must be Bcc", got)
	}
	if got := addrs(m.ReplyTo); strings.Join(got, ",") != "helpdesk@company.com" {
		t.Errorf("replyTo = %v", got)
	}
	if len(m.Attachments) != 2 {
		t.Fatalf("attachments = %+v", m.Attachments)
	}
	byName := map[string]graphtest.Attachment{}
	for _, a := range m.Attachments {
		byName[a.Name] = a
	}
	pdf, logo := byName["résumé.pdf"], byName["logo.png"]
	if !bytes.Equal(pdf.Content, pdfBytes) || pdf.ContentType != "application/pdf" || pdf.IsInline {
		t.Errorf("pdf attachment = %+v", pdf)
	}
	if !bytes.Equal(logo.Content, pngBytes) || !logo.IsInline || logo.ContentID != "logo@mfp" {
		t.Errorf("inline logo = %+v", logo)
	}
}

var scanRcpts = []string{"alice@company.com", "bob@company.com", "archive@company.com"}

func TestEndToEndCertificatePEM(t *testing.T) {
	t.Parallel()
	cert := newAppCert(t, "graphrelay-test")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "scans@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	r := startRelay(t, cfg, fake)

	if rep := sendNetSMTP(t, r.addr, "printer@mfp.lan", scanRcpts, scanMessage("printer@mfp.lan")); rep.code != 250 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}
	ds := fake.Deliveries()
	if len(ds) != 1 {
		t.Fatalf("deliveries = %d, want exactly 1 (synchronous delivery)", len(ds))
	}
	checkScanDelivery(t, ds[0], "scans@company.com")
	toks := fake.TokenRequests()
	if len(toks) != 1 || toks[0].AuthKind != "assertion" || toks[0].AssertionAlg != "PS256" || toks[0].Status != 200 {
		t.Errorf("token requests = %+v; want one PS256 certificate assertion", toks)
	}
	// A second message reuses the cached token.
	sendNetSMTP(t, r.addr, "printer@mfp.lan", scanRcpts, scanMessage("printer@mfp.lan"))
	if n := len(fake.TokenRequests()); n != 1 {
		t.Errorf("token requests after two messages = %d, want 1 (cached)", n)
	}
	if !strings.Contains(r.logs.String(), "request_id=") {
		t.Errorf("Graph's request-id is not logged")
	}
}

func TestEndToEndCertificatePFXAndRS256(t *testing.T) {
	t.Parallel()
	cert := newAppCert(t, "graphrelay-pfx")
	pfx, err := pkcs12.Modern.Encode(cert.key, cert.cert, nil, "pfx-pass")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pfxFile, passFile := filepath.Join(dir, "app.pfx"), filepath.Join(dir, "pass")
	os.WriteFile(pfxFile, pfx, 0o600)
	os.WriteFile(passFile, []byte("pfx-pass\n"), 0o600)

	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "alerts@company.com")
	cfg.Graph.PFXFile = pfxFile
	cfg.Graph.PFXPassword = "pfx-pass"
	cfg.Graph.AssertionAlg = "RS256"
	r := startRelay(t, cfg, fake)
	if rep := sendNetSMTP(t, r.addr, "alerts@company.com", scanRcpts, scanMessage("alerts@company.com")); rep.code != 250 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}
	checkScanDelivery(t, fake.Deliveries()[0], "alerts@company.com")
	if tr := fake.TokenRequests(); tr[0].AssertionAlg != "RS256" {
		t.Errorf("assertion alg = %s, want RS256 with x5t", tr[0].AssertionAlg)
	}
}

func TestEndToEndClientSecret(t *testing.T) {
	t.Parallel()
	fake := graphtest.New(t, graphtest.Config{Secrets: []graphtest.Secret{{Value: "s3cr3t~value"}}})
	cfg := fakeConfig(fake, "alerts@company.com")
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("s3cr3t~value\n"), 0o600)
	cfg.Graph.ClientSecretFile = secretFile
	cfg.Graph.ClientSecret = "s3cr3t~value" // what Load reads from the file
	r := startRelay(t, cfg, fake)
	if rep := sendNetSMTP(t, r.addr, "backup@nas.lan", scanRcpts, scanMessage("backup@nas.lan")); rep.code != 250 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}
	checkScanDelivery(t, fake.Deliveries()[0], "alerts@company.com")
	if strings.Contains(r.logs.String(), "s3cr3t") {
		t.Fatal("the client secret appears in the log")
	}
}

func TestEndToEndMailboxByObjectID(t *testing.T) {
	t.Parallel()
	const id = "5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab"
	cert := newAppCert(t, "graphrelay-id")
	fake := graphtest.New(t, graphtest.Config{
		Certificates: []*x509.Certificate{cert.cert},
		Mailboxes:    []graphtest.Mailbox{{Address: "scans@company.com", ID: id}},
	})
	cfg := fakeConfig(fake, "scans@company.com="+id)
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	r := startRelay(t, cfg, fake)
	if rep := sendNetSMTP(t, r.addr, "scans@company.com", scanRcpts, scanMessage("scans@company.com")); rep.code != 250 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}
	checkScanDelivery(t, fake.Deliveries()[0], id)
}

func TestEndToEndNationalClouds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ cloud, login, scope string }{
		{"global", "login.microsoftonline.com", "https://graph.microsoft.com/.default"},
		{"usgov", "login.microsoftonline.us", "https://graph.microsoft.us/.default"},
		{"dod", "login.microsoftonline.us", "https://dod-graph.microsoft.us/.default"},
		{"china", "login.partner.microsoftonline.cn", "https://microsoftgraph.chinacloudapi.cn/.default"},
	} {
		t.Run(tc.cloud, func(t *testing.T) {
			cert := newAppCert(t, "graphrelay-"+tc.cloud)
			fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
			cfg := fakeConfig(fake, "alerts@company.com")
			cfg.Graph.Cloud = tc.cloud
			cfg.Graph.AuthorityURL, cfg.Graph.GraphURL = "", "" // the preset's real hosts
			cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
			// CloudHTTPClient routes the real cloud host names to the fake
			// on loopback and refuses every other destination.
			r := startRelayWithClient(t, cfg, fake.CloudHTTPClient())
			if rep := sendNetSMTP(t, r.addr, "alerts@company.com", scanRcpts, scanMessage("alerts@company.com")); rep.code != 250 {
				t.Fatalf("reply %d %s", rep.code, rep.msg)
			}
			toks := fake.TokenRequests()
			if len(toks) != 1 {
				t.Fatalf("token requests = %+v", toks)
			}
			wantPath := "/" + fake.TenantID() + "/oauth2/v2.0/token"
			if toks[0].Host != tc.login || toks[0].Path != wantPath || toks[0].Scope != tc.scope {
				t.Errorf("token request = host %s path %s scope %q; want %s %s %q", toks[0].Host, toks[0].Path, toks[0].Scope, tc.login, wantPath, tc.scope)
			}
			if len(fake.Deliveries()) != 1 {
				t.Errorf("no delivery through the %s Graph host", tc.cloud)
			}
		})
	}
}

// Mail relayed with the managed identity of each Azure host, against the
// fake's emulation of that host's endpoint.
func TestEndToEndManagedIdentity(t *testing.T) {
	for _, host := range graphtest.ManagedIdentityHosts {
		t.Run(host, func(t *testing.T) {
			fake := graphtest.New(t, graphtest.Config{})
			fake.SetHostEnv(t, host)
			cfg := fakeConfig(fake, "alerts@company.com")
			cfg.Graph.ClientID = ""
			cfg.Graph.Credential = config.CredentialManagedIdentity
			// Only a VM's IMDS is at a fixed address; the other hosts
			// announce theirs in the environment SetHostEnv set.
			cfg.Graph.IMDSEndpoint = fake.IMDSURL() + "/metadata/identity/oauth2/token"
			r := startRelay(t, cfg, fake)
			if rep := sendNetSMTP(t, r.addr, "alerts@company.com", scanRcpts, scanMessage("alerts@company.com")); rep.code != 250 {
				t.Fatalf("reply %d %s", rep.code, rep.msg)
			}
			var ok []graphtest.TokenRequest
			for _, tr := range fake.TokenRequests() {
				if tr.Status == 200 {
					ok = append(ok, tr)
				}
			}
			if len(ok) != 1 || ok[0].AuthKind != host {
				t.Errorf("token requests = %+v, want one granted by %s", fake.TokenRequests(), host)
			}
			if len(fake.Deliveries()) != 1 {
				t.Errorf("%d deliveries, want 1", len(fake.Deliveries()))
			}
		})
	}
	t.Run("workload identity", func(t *testing.T) {
		fake := graphtest.New(t, graphtest.Config{Federated: []graphtest.FederatedCredential{{Issuer: "https://oidc.aks.test/cluster", Subject: "system:serviceaccount:mail:graphrelay"}}})
		tokenFile := filepath.Join(t.TempDir(), "azure-identity-token")
		os.WriteFile(tokenFile, []byte(fake.MintFederatedToken("https://oidc.aks.test/cluster", "system:serviceaccount:mail:graphrelay", time.Hour)), 0o600)
		cfg := fakeConfig(fake, "alerts@company.com")
		cfg.Graph.Credential = config.CredentialManagedIdentity
		cfg.Graph.FederatedTokenFile = tokenFile
		r := startRelay(t, cfg, fake)
		if rep := sendNetSMTP(t, r.addr, "alerts@company.com", scanRcpts, scanMessage("alerts@company.com")); rep.code != 250 {
			t.Fatalf("reply %d %s", rep.code, rep.msg)
		}
		if tr := fake.TokenRequests(); len(tr) != 1 || tr[0].AuthKind != "federated" {
			t.Errorf("token requests = %+v, want one federated assertion", tr)
		}
	})
}

func TestEndToEndWrongCertificate(t *testing.T) {
	t.Parallel()
	registered := newAppCert(t, "registered")
	other := newAppCert(t, "not-registered")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{registered.cert}})
	cfg := fakeConfig(fake, "alerts@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = other.certFile, other.keyFile
	r := startRelay(t, cfg, fake)
	rep := sendNetSMTP(t, r.addr, "alerts@company.com", scanRcpts, scanMessage("alerts@company.com"))
	if rep.code != 451 || !strings.HasPrefix(rep.msg, "4.4.1") {
		t.Errorf("reply = %d %s; a refused token must be a temporary failure", rep.code, rep.msg)
	}
	if strings.Contains(rep.msg, "AADSTS") {
		t.Errorf("internal error text leaked to the client: %s", rep.msg)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "AADSTS700027") || !strings.Contains(logs, "upload graphrelay's certificate") {
		t.Errorf("the log does not name the cause and the fix:%s", r.logs)
	}
	if len(fake.Deliveries()) != 0 {
		t.Error("a message was delivered without a valid token")
	}
}

func TestEndToEndAccessPolicyDenied(t *testing.T) {
	t.Parallel()
	cert := newAppCert(t, "graphrelay")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}, AccessPolicy: []string{"other@company.com"}})
	cfg := fakeConfig(fake, "alerts@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	r := startRelay(t, cfg, fake)
	rep := sendNetSMTP(t, r.addr, "alerts@company.com", scanRcpts, scanMessage("alerts@company.com"))
	if rep.code != 550 || !strings.HasPrefix(rep.msg, "5.7.1") {
		t.Errorf("reply = %d %s, want 550 5.7.1", rep.code, rep.msg)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "ErrorAccessDenied") || !strings.Contains(logs, "Application Access Policy") || !strings.Contains(logs, "request_id=") {
		t.Errorf("the log lacks the Graph code, the hint or the request-id:%s", r.logs)
	}
}

func TestEndToEndGraphUnavailable(t *testing.T) {
	t.Parallel()
	cert := newAppCert(t, "graphrelay")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "alerts@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	r := startRelay(t, cfg, fake)
	fake.FailGraph(graphtest.Fault{Status: 503, RetryAfter: "2.5"})
	rep := sendNetSMTP(t, r.addr, "alerts@company.com", scanRcpts, scanMessage("alerts@company.com"))
	if rep.code != 451 || !strings.HasPrefix(rep.msg, "4.4.1") {
		t.Errorf("reply = %d %s, want 451 4.4.1", rep.code, rep.msg)
	}
	// The client retries, as the 4xx asked, and Graph has recovered.
	if rep := sendNetSMTP(t, r.addr, "alerts@company.com", scanRcpts, scanMessage("alerts@company.com")); rep.code != 250 {
		t.Errorf("retry reply = %d %s", rep.code, rep.msg)
	}
	if n := len(fake.Deliveries()); n != 1 {
		t.Errorf("deliveries = %d, want 1", n)
	}
}

func TestEndToEndPythonSmtplib(t *testing.T) {
	t.Parallel()
	py := requireClient(t, "python3")
	cert := newAppCert(t, "graphrelay")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "alerts@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	r := startRelay(t, cfg, fake)

	for _, ending := range []string{"crlf", "lf"} {
		t.Run(ending, func(t *testing.T) {
			fake.Reset()
			msgFile := filepath.Join(t.TempDir(), "scan.eml")
			raw := scanMessage("alerts@company.com")
			if ending == "lf" {
				raw = strings.ReplaceAll(raw, "\r\n", "\n")
			}
			os.WriteFile(msgFile, []byte(raw), 0o644)
			// smtplib.sendmail with bytes sends the line endings as they are.
			script := `import smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
with smtplib.SMTP(host, int(port)) as s:
    s.ehlo("nas.lan")
    s.sendmail("alerts@company.com", sys.argv[3].split(","), open(sys.argv[2], "rb").read())
`
			out, err := exec.Command(py, "-c", script, r.addr, msgFile, strings.Join(scanRcpts, ",")).CombinedOutput()
			if err != nil {
				t.Fatalf("smtplib: %v\n%s", err, out)
			}
			ds := fake.Deliveries()
			if len(ds) != 1 {
				t.Fatalf("deliveries = %d", len(ds))
			}
			checkScanDelivery(t, ds[0], "alerts@company.com")
		})
	}
}

func TestEndToEndSwaks(t *testing.T) {
	t.Parallel()
	swaks := requireClient(t, "swaks")
	cert := newAppCert(t, "graphrelay")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "alerts@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	r := startRelay(t, cfg, fake)

	attach := filepath.Join(t.TempDir(), "report.pdf")
	os.WriteFile(attach, pdfBytes, 0o644)
	host, port, _ := strings.Cut(r.addr, ":")
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--helo", "ups.lan",
		"--from", "ups@ups.lan", "--to", "alice@company.com,archive@company.com",
		"--header", "Subject: UPS on battery", "--header", "To: alice@company.com",
		"--body", "Input power lost at 10:14.", "--attach", "@"+attach).CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "<-  250 2.0.0 queued as ") {
		t.Errorf("swaks transcript lacks the 250 with the queue id:\n%s", out)
	}
	ds := fake.Deliveries()
	if len(ds) != 1 {
		t.Fatalf("deliveries = %d", len(ds))
	}
	m := ds[0].Message
	if ds[0].Mailbox != "alerts@company.com" || m.Subject != "UPS on battery" || !strings.Contains(m.Body, "Input power lost at 10:14.") {
		t.Errorf("delivery = %+v", ds[0])
	}
	if strings.Join(addrs(m.To), ",") != "alice@company.com" || strings.Join(addrs(m.Bcc), ",") != "archive@company.com" {
		t.Errorf("to = %v bcc = %v", m.To, m.Bcc)
	}
	if len(m.Attachments) != 1 || !bytes.Equal(m.Attachments[0].Content, pdfBytes) || m.Attachments[0].Name != "report.pdf" {
		t.Errorf("attachments = %+v", m.Attachments)
	}
}
