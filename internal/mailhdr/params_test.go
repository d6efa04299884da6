package mailhdr

import (
	"reflect"
	"testing"
)

func TestParseMediaType(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		value  string
		params map[string]string
	}{
		{"simple", "text/plain; charset=us-ascii", "text/plain", map[string]string{"charset": "us-ascii"}},
		{"case", "Text/HTML; CHARSET=\"UTF-8\"", "text/html", map[string]string{"charset": "UTF-8"}},
		{"boundary kept", `multipart/mixed; boundary="----=_Part_0_1.2"`, "multipart/mixed", map[string]string{"boundary": "----=_Part_0_1.2"}},
		{"folded", "multipart/mixed;\r\n\tboundary=abc", "multipart/mixed", map[string]string{"boundary": "abc"}},
		{"unquoted spaces", "application/pdf; name=my scan (1).pdf", "application/pdf", map[string]string{"name": "my scan (1).pdf"}},
		{"unterminated quote", `attachment; filename="scan.pdf`, "attachment", map[string]string{"filename": "scan.pdf"}},
		{"escaped quote", `attachment; filename="a \"b\".pdf"`, "attachment", map[string]string{"filename": `a "b".pdf`}},
		{"windows path kept", `attachment; filename="C:\temp\a.pdf"`, "attachment", map[string]string{"filename": `C:\temp\a.pdf`}},
		{"semicolon in quotes", `attachment; filename="a;b.pdf"`, "attachment", map[string]string{"filename": "a;b.pdf"}},
		{"comment in type", "text/plain (body); charset=utf-8", "text/plain", map[string]string{"charset": "utf-8"}},
		{"rfc2231 single", "attachment; filename*=utf-8''%C3%9Cbersicht.pdf", "attachment", map[string]string{"filename": "Übersicht.pdf"}},
		{"rfc2231 latin1", "attachment; filename*=iso-8859-1'de'%DCbersicht.pdf", "attachment", map[string]string{"filename": "Übersicht.pdf"}},
		{"rfc2231 continuations", "attachment; filename*0*=utf-8''%C3%9C; filename*1*=bersicht; filename*2=.pdf",
			"attachment", map[string]string{"filename": "Übersicht.pdf"}},
		{"rfc2231 out of order", "attachment; filename*1=b.pdf; filename*0=a", "attachment", map[string]string{"filename": "ab.pdf"}},
		{"rfc2231 wins", "attachment; filename=\"plain.pdf\"; filename*=utf-8''x.pdf", "attachment", map[string]string{"filename": "x.pdf"}},
		{"rfc2231 split multibyte", "attachment; filename*0*=utf-8''%C3; filename*1*=%A9.txt", "attachment", map[string]string{"filename": "é.txt"}},
		{"rfc2231 unknown charset", "attachment; filename*=bogus''%E9.txt", "attachment", map[string]string{"filename": "é.txt"}},
		{"encoded word left alone", `attachment; filename="=?utf-8?q?a.pdf?="`, "attachment", map[string]string{"filename": "=?utf-8?q?a.pdf?="}},
		{"first wins", "text/plain; charset=utf-8; charset=latin1", "text/plain", map[string]string{"charset": "utf-8"}},
		{"junk params", "text/plain; ; foo; =bar; charset=utf-8;", "text/plain", map[string]string{"charset": "utf-8"}},
		{"empty", "", "", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, p := ParseMediaType(tt.in)
			if v != tt.value || !reflect.DeepEqual(p, tt.params) {
				t.Errorf("ParseMediaType(%q) = %q, %q; want %q, %q", tt.in, v, p, tt.value, tt.params)
			}
		})
	}
}

func TestParseMediaTypeMissingSemicolon(t *testing.T) {
	v, p := ParseMediaType("application/pdf name=\"x y.pdf\"")
	if v != "application/pdf" || p["name"] != "x y.pdf" {
		t.Errorf("got %q %q", v, p)
	}
	v, p = ParseMediaType("text/plain (comment) ; charset=utf-8")
	if v != "text/plain" || p["charset"] != "utf-8" {
		t.Errorf("got %q %q", v, p)
	}
}
