package convert

import (
	"bytes"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/graph"
)

// Rules 22-25: every non-body leaf is a fileAttachment with @odata.type, its
// decoded name (RFC 2231 with continuations and charset, RFC 2047 in
// quotes, raw 8-bit) or a generated one, a parameterless lower-case
// contentType, and a sanitised name.
func TestAttachmentNames(t *testing.T) {
	want := []struct{ name, ct string }{
		{"Überweisung März 2024 (Kopie).pdf", "application/pdf"}, // RFC 2231 continuations
		{"Prüfbericht.pdf", "application/pdf"},                   // RFC 2047 inside quotes
		{"管理.doc", "application/msword"},                         // raw UTF-8 Content-Type name
		{"résumé.txt", "text/plain"},                             // RFC 2231 ISO-8859-1, wins over raw name
		{"report.xls", "application/octet-stream"},               // Windows path reduced to its base
		{"image-6.png", "image/png"},                             // generated
		{"attachment-7.pdf", "application/pdf"},                  // generated
		{".._.._etc_passwd", "application/x-weird"},              // separators, control and bidi characters
	}
	for v, res := range convertAll(t, "names.eml", oneRcpt) {
		as := res.Message.Attachments
		if len(as) != len(want) {
			t.Fatalf("%s: %d attachments %q", v, len(as), names(as))
		}
		for i, w := range want {
			a := as[i]
			if a.Name != w.name || a.ContentType != w.ct || a.ODataType != graph.FileAttachmentType || a.IsInline {
				t.Errorf("%s: attachment %d = %q %q %q, want %q %q", v, i, a.Name, a.ContentType, a.ODataType, w.name, w.ct)
			}
		}
		if !bytes.HasPrefix(as[0].ContentBytes, []byte("%PDF-1.4")) {
			t.Errorf("%s: pdf bytes %q", v, as[0].ContentBytes[:8])
		}
	}
}

// Rules 24-25: sanitising and generating names.
func TestSanitizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"scan.pdf", "scan.pdf"},
		{"  spaced  ", "spaced"},
		{`C:\TEMP\scan.pdf`, "scan.pdf"},
		{`\\server\share\f.doc`, "f.doc"},
		{"/tmp/x.txt", "x.txt"},
		{"a/b.txt", "a_b.txt"},
		{"tab\tname\x00.txt", "tab name.txt"},
		{"invoice\u202Efdp.exe", "invoicefdp.exe"},
		{"..", ""},
		{"日本語のファイル.pdf", "日本語のファイル.pdf"},
	}
	for _, tt := range tests {
		if got := sanitizeName(tt.in); got != tt.want {
			t.Errorf("sanitizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := strings.Repeat("長", 300) + ".pdf"
	got := sanitizeName(long)
	if utf16Len(got) != maxNameUTF16 || !strings.HasSuffix(got, "長.pdf") {
		t.Errorf("long name cut to %d units: ...%q", utf16Len(got), got[len(got)-10:])
	}
	gen := map[string]string{
		"image/jpeg": "image-3.jpg", "application/pdf": "attachment-3.pdf", "message/rfc822": "message-3.eml",
		"text/csv": "attachment-3.csv", "text/x-foo": "attachment-3.txt", "application/x-foo": "attachment-3.bin",
		"application/ms-tnef": "winmail.dat", "application/pkcs7-signature": "smime.p7s",
	}
	for mt, want := range gen {
		if got := generatedName(mt, 3); got != want {
			t.Errorf("generatedName(%q) = %q, want %q", mt, got, want)
		}
	}
}

// Rules 23-24: a nested message/rfc822 is attached as .eml with its bytes
// unchanged, named by its filename, else its subject, else generated.
func TestNestedMessage(t *testing.T) {
	for v, b := range variants(t, "nested-message.eml") {
		res, err := Convert(bytes.NewReader(b), oneRcpt, Options{})
		if err != nil {
			t.Fatal(err)
		}
		as := res.Message.Attachments
		if got := strings.Join(names(as), "|"); got != "Monthly report – May.eml|original.eml|message-3.eml" {
			t.Fatalf("%s: names %q", v, got)
		}
		for _, a := range as {
			if a.ContentType != "message/rfc822" || !bytes.Contains(b, a.ContentBytes) || len(a.ContentBytes) == 0 {
				t.Errorf("%s: %s: type %q or bytes changed", v, a.Name, a.ContentType)
			}
		}
		if !bytes.Contains(as[0].ContentBytes, []byte("inner pdf")) {
			t.Errorf("%s: nested message truncated", v)
		}
		if !strings.Contains(res.Message.Body.Content, "See the forwarded message.") {
			t.Errorf("%s: body %q", v, res.Message.Body.Content)
		}
	}
}

// Rule 23: winmail.dat and unknown types pass through as attachments.
func TestTNEFAndUnknownTypes(t *testing.T) {
	for v, res := range convertAll(t, "tnef-unknown.eml", oneRcpt) {
		got := []string{}
		for _, a := range res.Message.Attachments {
			got = append(got, a.Name+" "+a.ContentType)
		}
		want := "winmail.dat application/ms-tnef|data.frob application/x-frobnicate|attachment-3.bin audio/x-strange"
		if strings.Join(got, "|") != want {
			t.Errorf("%s: %q", v, got)
		}
		if a := find(res.Message.Attachments, "data.frob"); a == nil || !bytes.Equal(a.ContentBytes, []byte{0, 1, 2, 3}) {
			t.Errorf("%s: data.frob bytes", v)
		}
	}
}

// Rule 26: a part whose Content-ID the HTML body references as cid: (case-
// insensitive, URL-decoded) is inline with contentId, whatever its
// disposition; unreferenced parts are regular attachments.
func TestInline(t *testing.T) {
	for v, res := range convertAll(t, "inline-cid.eml", oneRcpt) {
		type want struct {
			name   string
			inline bool
			cid    string
		}
		wants := []want{
			{"image001.png", true, "image001.png@01D0"}, // disposition attachment, other case in the HTML
			{"image-2.png", true, "logo@example.com"},   // percent-encoded reference
			{"image-3.png", true, "bg@x"},               // CSS url(), Content-ID without brackets
			{"unused.png", false, ""},                   // inline disposition but unreferenced
		}
		as := res.Message.Attachments
		if len(as) != len(wants) {
			t.Fatalf("%s: %q", v, names(as))
		}
		for i, w := range wants {
			if as[i].Name != w.name || as[i].IsInline != w.inline || as[i].ContentID != w.cid {
				t.Errorf("%s: %d = %q inline=%v cid=%q, want %+v", v, i, as[i].Name, as[i].IsInline, as[i].ContentID, w)
			}
		}
		// The HTML spells each reference as the part's contentId.
		for _, ref := range []string{`src="cid:image001.png@01D0"`, `src='cid:logo@example.com'`, `url(cid:bg@x)`} {
			if !strings.Contains(res.Message.Body.Content, ref) {
				t.Errorf("%s: body lacks %s: %q", v, ref, res.Message.Body.Content)
			}
		}
	}
	for v, res := range convertAll(t, "inline-text-body.eml", oneRcpt) {
		if a := res.Message.Attachments; len(a) != 1 || a[0].IsInline {
			t.Errorf("%s: a Text body references nothing: %+v", v, a)
		}
	}
}
