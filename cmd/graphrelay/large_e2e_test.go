package main

import (
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// secretRelay starts the App against a fake whose tokens carry roles.
func secretRelay(t *testing.T, roles []string, edit func(*config.Config)) (*runningRelay, *graphtest.Server) {
	t.Helper()
	fake := graphtest.New(t, graphtest.Config{Secrets: []graphtest.Secret{{Value: "s3cr3t~value"}}, Roles: roles})
	cfg := fakeConfig(fake, "scans@company.com")
	cfg.Graph.ClientSecret = "s3cr3t~value"
	if edit != nil {
		edit(cfg)
	}
	return startRelay(t, cfg, fake), fake
}

// A 30 MB message (a 22 MB attachment) from Python's smtplib goes through
// the draft and upload-session path of the real daemon wiring, and the
// attachment arrives byte for byte.
func TestEndToEndLargeMessageUpload(t *testing.T) {
	t.Parallel()
	py := requireClient(t, "python3")
	r, fake := secretRelay(t, []string{"Mail.Send", "Mail.ReadWrite"}, nil)
	raw, attachment := e2etest.LargeMessage(22_000_000, 30)
	if len(raw) < 29_000_000 {
		t.Fatalf("test message is %d bytes, want about 30 MB", len(raw))
	}
	msgFile := filepath.Join(t.TempDir(), "large.eml")
	os.WriteFile(msgFile, raw, 0o644)
	script := `import smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
with smtplib.SMTP(host, int(port), timeout=300) as s:
    s.ehlo("scanner.lan")
    s.sendmail("scanner@mfp.lan", ["alice@company.com", "archive@company.com"], open(sys.argv[2], "rb").read())
`
	out, err := exec.Command(py, "-c", script, r.addr, msgFile).CombinedOutput()
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	ds := fake.Deliveries()
	if len(ds) != 1 || ds[0].Kind != "draft" {
		t.Fatalf("deliveries = %d (kind %v); want one through the draft path", len(ds), kinds(ds))
	}
	m := ds[0].Message
	if len(m.Attachments) != 1 || m.Attachments[0].Name != "scan.pdf" || m.Attachments[0].ContentType != "application/pdf" ||
		sha256.Sum256(m.Attachments[0].Content) != sha256.Sum256(attachment) {
		t.Fatalf("attachment did not arrive intact: %d attachments", len(m.Attachments))
	}
	if m.Subject != "Large scan" || !strings.Contains(m.Body, "Scanned document attached.") {
		t.Errorf("subject %q body %q", m.Subject, m.Body)
	}
	if strings.Join(addrs(m.To), ",") != "alice@company.com" || strings.Join(addrs(m.Bcc), ",") != "archive@company.com" {
		t.Errorf("to %v bcc %v", addrs(m.To), addrs(m.Bcc))
	}
	ups := fake.UploadRequests()
	if len(ups) != (22_000_000+3_932_159)/3_932_160 {
		t.Errorf("%d upload PUTs", len(ups))
	}
	for _, u := range ups {
		if u.Authorization {
			t.Error("an Authorization header was sent to the upload URL")
		}
	}
	logs := r.logs.String()
	for _, want := range []string{"path=draft", "draft_request_id=", "send_request_id=", "attachments_uploaded=1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func kinds(ds []graphtest.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Kind)
	}
	return out
}

// delivery.large_messages: reject answers 552 5.3.4 at DATA for what
// needs the large path, and the log names the limit.
func TestEndToEndLargeMessageReject(t *testing.T) {
	t.Parallel()
	r, fake := secretRelay(t, []string{"Mail.Send", "Mail.ReadWrite"}, func(c *config.Config) {
		c.Delivery.LargeMessages = config.LargeReject
	})
	raw, _ := e2etest.LargeMessage(3_500_000, 35)
	rep := sendNetSMTP(t, r.addr, "scanner@mfp.lan", []string{"alice@company.com"}, string(raw))
	if rep.code != 552 || !strings.HasPrefix(rep.msg, "5.3.4") || !strings.Contains(rep.msg, "4,000,000-byte Graph request limit") {
		t.Errorf("reply = %d %s, want 552 5.3.4 naming the limit", rep.code, rep.msg)
	}
	if !strings.Contains(r.logs.String(), "4,000,000-byte Graph request limit") {
		t.Errorf("the log does not name the limit:%s", r.logs)
	}
	if n := len(fake.GraphRequests()); n != 0 {
		t.Errorf("%d Graph requests for a refused message", n)
	}
}

// Without Mail.ReadWrite a large message is refused, and the log says
// which permission to grant or which setting to change.
func TestEndToEndLargeMessageWithoutReadWrite(t *testing.T) {
	t.Parallel()
	r, fake := secretRelay(t, []string{"Mail.Send"}, nil)
	raw, _ := e2etest.LargeMessage(3_500_000, 36)
	rep := sendNetSMTP(t, r.addr, "scanner@mfp.lan", []string{"alice@company.com"}, string(raw))
	if rep.code/100 != 5 {
		t.Errorf("reply = %d %s, want a permanent refusal", rep.code, rep.msg)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "Mail.ReadWrite") || !strings.Contains(logs, "delivery.large_messages: reject") {
		t.Errorf("the log lacks the Mail.ReadWrite hint:%s", r.logs)
	}
	if len(fake.Deliveries()) != 0 {
		t.Error("delivered without Mail.ReadWrite")
	}
}
