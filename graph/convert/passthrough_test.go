package convert

import (
	"bytes"
	"errors"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// rewriteMIME runs PrepareMIME on msg (LF in the test source, sent as
// CRLF as smtpd spools it) and returns the whole rewritten message.
func rewriteMIME(t *testing.T, msg string, env MIMEEnvelope) (string, *MIME) {
	t.Helper()
	raw := []byte(strings.ReplaceAll(msg, "\n", "\r\n"))
	m, err := PrepareMIME(bytes.NewReader(raw), int64(len(raw)), env)
	if err != nil {
		t.Fatalf("PrepareMIME: %v", err)
	}
	out, err := m.Bytes(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(out)) != m.Size() {
		t.Fatalf("Size %d, Bytes %d", m.Size(), len(out))
	}
	// The body is the input's, byte for byte.
	if !bytes.HasSuffix(raw, out[len(m.Header):]) {
		t.Fatal("the body changed")
	}
	return string(out), m
}

// header parses the rewritten header with net/mail, as the fake Graph
// does, and returns the addresses of a field.
func header(t *testing.T, msg, key string) []string {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(msg))
	if err != nil {
		t.Fatalf("rewritten message does not parse: %v\n%s", err, msg)
	}
	if m.Header.Get(key) == "" {
		return nil
	}
	list, err := m.Header.AddressList(key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	var out []string
	for _, a := range list {
		out = append(out, a.Name+" <"+a.Address+">")
	}
	return out
}

var mimeEnv = MIMEEnvelope{Mailbox: "scans@company.com", FromName: "MFP 2nd floor",
	Recipients: []string{"alice@company.com", "BOB@company.com", "archive@company.com"}}

// The passthrough rule, case by case.
func TestPassthroughRecipients(t *testing.T) {
	msg := `From: Printer <printer@mfp.lan>
Sender: operator@mfp.lan
To: Alice <alice@company.com>, Stranger <stranger@elsewhere.com>
Cc: Bob <bob@company.com>
Bcc: hidden@elsewhere.com
Subject: Scan
In-Reply-To: <a@b>
References: <x@y> <a@b>

body
`
	out, m := rewriteMIME(t, msg, mimeEnv)
	if got := strings.Join(header(t, out, "From"), ","); got != "MFP 2nd floor <scans@company.com>" {
		t.Errorf("From = %q", got)
	}
	if got := strings.Join(header(t, out, "To"), ","); got != "Alice <alice@company.com>" {
		t.Errorf("To = %q; the stranger is not in the envelope", got)
	}
	// Cc is unchanged (bob matches BOB without regard to case), byte for byte.
	if !strings.Contains(out, "\r\nCc: Bob <bob@company.com>\r\n") {
		t.Errorf("Cc was rewritten although nothing was removed:\n%s", out)
	}
	if got := strings.Join(header(t, out, "Bcc"), ","); got != " <archive@company.com>" {
		t.Errorf("Bcc = %q; the envelope-only recipient, and only it", got)
	}
	for _, gone := range []string{"Sender:", "hidden@elsewhere.com", "stranger@"} {
		if strings.Contains(out, gone) {
			t.Errorf("%q survived:\n%s", gone, out)
		}
	}
	for _, kept := range []string{"\r\nSubject: Scan\r\n", "\r\nIn-Reply-To: <a@b>\r\n", "\r\nReferences: <x@y> <a@b>\r\n"} {
		if !strings.Contains(out, kept) {
			t.Errorf("%q lost:\n%s", kept, out)
		}
	}
	if m.Removed != 1 || m.AddedBcc != 1 || m.DroppedBcc != 1 {
		t.Errorf("counts = %+v", m)
	}
	// From replaces the first From in place.
	if !strings.HasPrefix(out, "From: ") {
		t.Errorf("From moved:\n%s", out)
	}
}

func TestPassthroughHeaderCases(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		env  MIMEEnvelope
		want []string // substrings of the result
		not  []string
	}{
		{"no From: added first",
			"Subject: s\nTo: alice@company.com\n\nb\n", mimeEnv,
			[]string{"From: \"MFP 2nd floor\" <scans@company.com>\r\nSubject: s\r\n"}, nil},
		{"two From fields: one left",
			"From: a@x\nFrom: b@x\nTo: alice@company.com\n\nb\n", mimeEnv,
			[]string{"From: \"MFP 2nd floor\" <scans@company.com>\r\nTo:"}, []string{"a@x", "b@x"}},
		{"no display name",
			"From: a@x\n\nb\n", MIMEEnvelope{Mailbox: "scans@company.com", Recipients: []string{"alice@company.com"}},
			[]string{"From: <scans@company.com>\r\n", "Bcc: <alice@company.com>\r\n"}, nil},
		{"Reply-To added for a rewritten sender",
			"From: a@x\nTo: alice@company.com\n\nb\n", MIMEEnvelope{Mailbox: "scans@company.com", ReplyTo: "a@x", Recipients: []string{"alice@company.com"}},
			[]string{"From: <scans@company.com>\r\nReply-To: <a@x>\r\n"}, nil},
		{"existing Reply-To kept",
			"From: a@x\nReply-To: help@x\n\nb\n", MIMEEnvelope{Mailbox: "scans@company.com", ReplyTo: "a@x", Recipients: []string{"alice@company.com"}},
			[]string{"Reply-To: help@x\r\n"}, []string{"<a@x>"}},
		{"unqualified Reply-To qualified",
			"From: root\nReply-To: root (Cron Daemon)\n\nb\n", MIMEEnvelope{Mailbox: "scans@company.com", QualifyDomain: "host.example", Recipients: []string{"alice@company.com"}},
			[]string{"Reply-To: \"Cron Daemon\" <root@host.example>\r\n"}, []string{"<root@>"}},
		{"unusable Reply-To replaced by the rewritten sender",
			"From: a@x.example\nReply-To: =?utf-8?q?Support?=\n\nb\n", MIMEEnvelope{Mailbox: "scans@company.com", ReplyTo: "a@x.example", Recipients: []string{"alice@company.com"}},
			[]string{"From: <scans@company.com>\r\nReply-To: <a@x.example>\r\n"}, []string{"Support"}},
		{"unqualifiable Reply-To removed",
			"From: root\nReply-To: root\n\nb\n", MIMEEnvelope{Mailbox: "scans@company.com", ReplyTo: "root", Recipients: []string{"alice@company.com"}},
			nil, []string{"Reply-To", "<root@>"}},
		{"at sign lookalike in the From name",
			"From: a@x\n\nb\n", MIMEEnvelope{Mailbox: "scans@company.com", FromName: "payroll＠company.com", Recipients: []string{"alice@company.com"}},
			[]string{"From: \"payroll at company.com\" <scans@company.com>\r\n"}, []string{"＠"}},
		{"U-label To written as the envelope's A-label",
			"From: a@x\nTo: HR <hr@Bücher.example>\n\nb\n", MIMEEnvelope{Mailbox: "scans@company.com", Recipients: []string{"hr@xn--bcher-kva.example"}},
			[]string{"To: \"HR\" <hr@xn--bcher-kva.example>\r\n"}, []string{"Bcc:", "Bücher"}},
		{"lost folding indent restored",
			"Subject: scan\ncontinued\nFrom: a@x\n\nb\n", MIMEEnvelope{Mailbox: "scans@company.com", Recipients: []string{"alice@company.com"}},
			[]string{"Subject: scan\r\n continued\r\n"}, nil},
		{"To with nobody left is removed",
			"From: a@x\nTo: s@elsewhere.com\n\nb\n", mimeEnv,
			[]string{"Bcc: <alice@company.com>, <BOB@company.com>, <archive@company.com>\r\n"}, []string{"To:"}},
		{"empty group kept",
			"From: a@x\nTo: undisclosed-recipients:;\n\nb\n", mimeEnv,
			[]string{"To: undisclosed-recipients:;\r\n"}, nil},
		{"non-ASCII name re-encoded when rewritten",
			"From: a@x\nTo: =?utf-8?q?Zo=C3=AB?= <alice@company.com>, s@elsewhere.com\n\nb\n", mimeEnv,
			[]string{"To: =?utf-8?q?Zo=C3=AB?= <alice@company.com>\r\n"}, []string{"elsewhere"}},
		{"each recipient once, To over Cc",
			"From: a@x\nCc: Bob <bob@company.com>, alice@company.com\nTo: Alice <alice@company.com>, alice@company.com\n\nb\n", mimeEnv,
			[]string{"Cc: \"Bob\" <bob@company.com>\r\n", "To: \"Alice\" <alice@company.com>\r\n", "Bcc: <archive@company.com>\r\n"}, nil},
		{"no envelope: recipients untouched",
			"From: a@x\nTo: s@elsewhere.com\nBcc: h@elsewhere.com\n\nb\n", MIMEEnvelope{Mailbox: "scans@company.com"},
			[]string{"To: s@elsewhere.com\r\n", "Bcc: h@elsewhere.com\r\n"}, nil},
		{"mbox From line and BOM dropped",
			"\ufeffFrom printer Mon Jan  1 00:00:00 2024\nFrom: a@x\nTo: alice@company.com\n\nb\n", mimeEnv,
			[]string{"From: \"MFP 2nd floor\""}, []string{"From printer", "\ufeff"}},
		{"header without its empty line gets one",
			"From: a@x\nTo: alice@company.com\nthis line starts the body\n", mimeEnv,
			[]string{"\r\n\r\nthis line starts the body\r\n"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := rewriteMIME(t, tt.msg, tt.env)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in:\n%s", w, out)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("unexpected %q in:\n%s", n, out)
				}
			}
			header(t, out, "To") // parses as a message
		})
	}
}

// A multipart/signed message passes with its signed body, boundaries and
// line endings byte for byte, and so do bare LF bodies.
func TestPassthroughBodyUnchanged(t *testing.T) {
	signed := "From: a@x\r\nTo: alice@company.com\r\nSubject: signed\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"sig\"\r\n\r\n" +
		"This is a cryptographically signed message in MIME format.\r\n\r\n--sig\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Caf=C3=A9 =\r\nsigned text  \r\n.leading dot\r\n--sig\r\n" +
		"Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIIF\r\n--sig--\r\n"
	lfBody := "From: a@x\nTo: alice@company.com\n\nline one\nline two\n"
	for name, tc := range map[string]struct{ raw, sep string }{
		"multipart/signed": {signed, "\r\n\r\n"}, "bare LF": {lfBody, "\n\n"},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := PrepareMIME(strings.NewReader(tc.raw), int64(len(tc.raw)), mimeEnv)
			if err != nil {
				t.Fatal(err)
			}
			_, want, _ := strings.Cut(tc.raw, tc.sep)
			out, _ := m.Bytes(strings.NewReader(tc.raw))
			if got := string(out[len(m.Header):]); got != want {
				t.Fatalf("body changed:\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func TestPassthroughErrors(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":        "  \r\n",
		"huge header":  "From: a@x\r\nX-Big: " + strings.Repeat("x", DefaultMaxHeaderBytes+10) + "\r\n\r\nb\r\n",
		"huge field 2": "From: a@x\r\n" + strings.Repeat("X-A: b\r\n", DefaultMaxHeaderBytes/8+10) + "\r\nb\r\n",
	} {
		_, err := PrepareMIME(strings.NewReader(raw), int64(len(raw)), mimeEnv)
		var ce *Error
		if !errors.As(err, &ce) || !ce.InvalidContent() {
			t.Errorf("%s: err = %v, want a content error", name, err)
		}
	}
}

// FuzzPrepareMIME feeds arbitrary messages to the passthrough rewrite. It
// must not panic; the body must be the input's tail, unchanged; and no
// address outside the envelope may be left in To or Cc, nor any Bcc but
// the one it adds.
func FuzzPrepareMIME(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	env := MIMEEnvelope{Mailbox: "scans@company.com", FromName: "Zoë \"MFP\"", ReplyTo: "printer@mfp.lan",
		Recipients: []string{"alice@example.com", "B@example.com"}}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := PrepareMIME(bytes.NewReader(in), int64(len(in)), env)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		out, err := m.Bytes(bytes.NewReader(in))
		if err != nil || int64(len(out)) != m.Size() || m.BodyOffset < 0 || m.BodyOffset > int64(len(in)) {
			t.Fatalf("Bytes: %v, %d bytes, Size %d, BodyOffset %d", err, len(out), m.Size(), m.BodyOffset)
		}
		if !bytes.Equal(out[len(m.Header):], in[m.BodyOffset:]) {
			t.Fatal("the body is not the input's tail")
		}
		if !bytes.HasSuffix(m.Header, []byte("\r\n\r\n")) && !bytes.Equal(m.Header, []byte("\r\n")) {
			t.Fatalf("header block does not end with an empty line: %q", m.Header)
		}
		hr := readHeader(m.Header, false, DefaultMaxHeaderBytes)
		allowed := map[string]bool{"alice@example.com": true, "b@example.com": true}
		for _, key := range []string{"To", "Cc", "Bcc"} {
			for _, v := range hr.header.Values(key) {
				list, _ := mailhdr.ParseAddressList(v)
				for _, a := range list {
					if !allowed[addrKey(a.Address)] {
						t.Fatalf("%s keeps %q, not an envelope recipient", key, a.Address)
					}
				}
			}
		}
		if n := len(hr.header.Values("From")); n != 1 {
			t.Fatalf("%d From fields", n)
		}
	})
}
