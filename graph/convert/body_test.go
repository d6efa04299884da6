package convert

import (
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/graph"
)

// Rule 18: body charsets are converted to UTF-8; unknown labels fall back to
// UTF-8, else Windows-1252, with a warning; the body is never dropped.
func TestBodyCharsets(t *testing.T) {
	tests := []struct {
		file, want string
		warn       bool
	}{
		{"charset-iso-2022-jp.eml", "テストメッセージです。", false},
		{"charset-shift_jis.eml", "テストメッセージです。", false},
		{"charset-euc-jp.eml", "テストメッセージです。", false},
		{"charset-gb2312.eml", "这是一封测试邮件。", false},
		{"charset-big5.eml", "這是一封測試郵件。", false},
		{"charset-koi8-r.eml", "Это тестовое письмо.", false},
		{"charset-ks_c_5601-1987.eml", "테스트 메시지입니다.", false},
		{"charset-euc-kr.eml", "테스트 메시지입니다.", false},
		{"charset-windows-1251.eml", "Это тестовое письмо.", false},
		{"charset-windows-1252.eml", "Café “quoted” €", false},
		{"charset-iso-8859-1.eml", "Café crème", false},
		{"charset-iso-8859-2.eml", "Zażółć gęślą jaźń", false},
		{"charset-iso-8859-15.eml", "Prix: 10 €", false},
		{"charset-utf-16.eml", "UTF-16 body é", false},
		{"charset-utf-16le.eml", "UTF-16LE body é", false},
		{"charset-unknown-utf8.eml", "Grüße", true},
		{"charset-unknown-latin1.eml", "Grüße", true},
		{"charset-none-8bit.eml", "Grüße und Grüße", false},
	}
	for _, tt := range tests {
		for v, res := range convertAll(t, tt.file, oneRcpt) {
			b := res.Message.Body
			if b.ContentType != graph.BodyText || strings.TrimSpace(lf(b.Content)) != tt.want {
				t.Errorf("%s (%s): body %s %q, want %q", tt.file, v, b.ContentType, b.Content, tt.want)
			}
			if hasWarning(res, "unknown charset") != tt.warn {
				t.Errorf("%s (%s): warnings %q", tt.file, v, res.Warnings)
			}
		}
	}
}

// Rule 18: an HTML part without a charset parameter uses its <meta>
// declaration, which is rewritten to utf-8 because the body is now Unicode.
func TestHTMLMetaCharset(t *testing.T) {
	for v, res := range convertAll(t, "charset-html-meta.eml", oneRcpt) {
		b := res.Message.Body
		if b.ContentType != graph.BodyHTML || !strings.Contains(b.Content, "<body>Привет</body>") || !strings.Contains(b.Content, "charset=utf-8") {
			t.Errorf("%s: body %q", v, b.Content)
		}
	}
}

// Rule 17: base64 and quoted-printable are decoded tolerantly, 7bit/8bit/
// binary pass, unknown encodings are read as 8bit with a warning.
func TestTransferEncodings(t *testing.T) {
	for v, res := range convertAll(t, "cte-base64-truncated.eml", oneRcpt) {
		a := find(res.Message.Attachments, "data.bin")
		if a == nil || string(a.ContentBytes) != "0123456789abcde" || !hasWarning(res, "truncated base64") {
			t.Errorf("%s: truncated base64: %v %q", v, a, res.Warnings)
		}
	}
	for v, res := range convertAll(t, "cte-base64-junk.eml", oneRcpt) {
		if res.Message.Body.Content != "Hello world!" || !hasWarning(res, "invalid characters") {
			t.Errorf("%s: base64 junk: %q %q", v, res.Message.Body.Content, res.Warnings)
		}
	}
	for v, res := range convertAll(t, "cte-qp-tolerant.eml", oneRcpt) {
		if got := lf(res.Message.Body.Content); got != "Café é softbreak 100=% trailing\nlast=\n" {
			t.Errorf("%s: qp: %q", v, got)
		}
	}
	for v, res := range convertAll(t, "cte-unknown.eml", oneRcpt) {
		if lf(res.Message.Body.Content) != "kept as is\n" || !hasWarning(res, "unknown transfer encoding") {
			t.Errorf("%s: unknown cte: %q %q", v, res.Message.Body.Content, res.Warnings)
		}
	}
	for v, res := range convertAll(t, "cte-uuencode.eml", oneRcpt) {
		a := find(res.Message.Attachments, "hello.txt")
		if a == nil || string(a.ContentBytes) != "Hello, world!\n" {
			t.Errorf("%s: uuencode: %+v", v, res.Message.Attachments)
		}
	}
	for v, res := range convertAll(t, "cte-7bit-variants.eml", oneRcpt) {
		if lf(res.Message.Body.Content) != "plain\n" || len(res.Warnings) != 0 {
			t.Errorf("%s: 7-bit: %q %q", v, res.Message.Body.Content, res.Warnings)
		}
	}
}

// Rule 17: the decoders on their own.
func TestDecoders(t *testing.T) {
	b64 := []struct{ in, want, warn string }{
		{"SGVsbG8=", "Hello", ""},
		{"SGVs\r\nbG8=", "Hello", ""},
		{"SGVsbG8", "Hello", ""},
		{"SGVsbG8=SGk=", "HelloHi", ""},
		{"SGVsbG8gS", "Hello ", "truncated"},
		{"SG*Vs-bG8=", "Hello", "invalid"},
		{"", "", ""},
	}
	for _, tt := range b64 {
		got, w := decodeBase64([]byte(tt.in))
		if string(got) != tt.want || !strings.Contains(w, tt.warn) || (tt.warn == "" && w != "") {
			t.Errorf("decodeBase64(%q) = %q, %q", tt.in, got, w)
		}
	}
	qp := []struct{ in, want string }{
		{"a=3Db", "a=b"},
		{"a=3db", "a=b"},
		{"soft=\r\nbreak", "softbreak"},
		{"soft= \nbreak", "softbreak"},
		{"trail  \r\nx", "trail\r\nx"},
		{"bad=ZZ", "bad=ZZ"},
		{"end=", "end"},
		{"=", ""},
	}
	for _, tt := range qp {
		if got := string(decodeQP([]byte(tt.in))); got != tt.want {
			t.Errorf("decodeQP(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	ctes := map[string]transferEncoding{
		"": cteIdentity, "7BIT": cteIdentity, "8-bit": cteIdentity, " binary ": cteIdentity, "8": cteIdentity,
		"Base64": cteBase64, "\"base64\"": cteBase64, "quoted_printable": cteQP, "Quoted-Printable": cteQP,
		"x-uuencode": cteUU, "base9000": cteUnknown, "x-gzip64": cteUnknown,
	}
	for in, want := range ctes {
		if got := parseCTE(in); got != want {
			t.Errorf("parseCTE(%q) = %v, want %v", in, got, want)
		}
	}
}

// Rules 21-22: body selection. multipart/alternative takes the richest part
// (HTML over text, also inside multipart/related), text-only gives Text,
// no Content-Type reads text/plain, further text parts of a
// multipart/mixed become attachments, and a message with only attachments
// gets an empty Text body.
func TestBodySelection(t *testing.T) {
	tests := []struct {
		file     string
		ct       string
		contains string
		atts     []string
	}{
		{"alt-html-text.eml", graph.BodyHTML, "<p>HTML version.</p>", nil},
		{"alt-related-nested.eml", graph.BodyHTML, `<img src="cid:logo@example.com">`, []string{"logo.png", "attachment-2.ics", "scan.pdf"}},
		{"alt-empty-html.eml", graph.BodyText, "Real text.", nil},
		{"related-start.eml", graph.BodyHTML, `<img src="CID:img@x">`, []string{"image-1.gif"}},
		{"text-only.eml", graph.BodyText, "Just text.", nil},
		{"no-content-type.eml", graph.BodyText, "backup ok", nil},
		{"mixed-two-texts.eml", graph.BodyText, "First text.", []string{"photo.jpg", "attachment-2.txt"}},
		{"empty-body-attachment.eml", graph.BodyText, "", []string{"scan.pdf"}},
		{"text-attachment-only.eml", graph.BodyText, "", []string{"backup.log"}},
	}
	for _, tt := range tests {
		for v, res := range convertAll(t, tt.file, oneRcpt) {
			b := res.Message.Body
			if b.ContentType != tt.ct || !strings.Contains(b.Content, tt.contains) || (tt.contains == "" && b.Content != "") {
				t.Errorf("%s (%s): body %s %q", tt.file, v, b.ContentType, b.Content)
			}
			if got := names(res.Message.Attachments); strings.Join(got, ",") != strings.Join(tt.atts, ",") {
				t.Errorf("%s (%s): attachments %q, want %q", tt.file, v, got, tt.atts)
			}
		}
	}
	res := convertAll(t, "mixed-two-texts.eml", oneRcpt)["LF"]
	if a := find(res.Message.Attachments, "attachment-2.txt"); a == nil || string(a.ContentBytes) != "Second text." {
		t.Errorf("second text part: %+v", a)
	}
}

// Rule 19: format=flowed text is unwrapped for display.
func TestFlowed(t *testing.T) {
	for v, res := range convertAll(t, "flowed.eml", oneRcpt) {
		want := "This is a long line that was wrapped by the sender.\n> Quoted text that continues.\nFrom stuffed.\n-- \nSig\n"
		if got := lf(res.Message.Body.Content); got != want {
			t.Errorf("%s: %q\nwant %q", v, got, want)
		}
	}
	if got := unflow("a \r\nb", true); got != "ab" {
		t.Errorf("delsp: %q", got)
	}
}

// Rule 20: characters Exchange cannot store are removed or replaced.
func TestSanitizeBody(t *testing.T) {
	for v, res := range convertAll(t, "html-nul-controls.eml", oneRcpt) {
		if got := lf(res.Message.Body.Content); got != "<p>ab\uFFFDc\nd\uFFFDe</p>\n" {
			t.Errorf("%s: %q", v, got)
		}
	}
}
