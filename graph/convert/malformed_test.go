package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// Rules 1-4: malformed structure gives a best-effort message.
func TestMalformed(t *testing.T) {
	tests := []struct {
		file    string
		subject string
		body    string
		atts    []string
		warn    string
	}{
		{"mbox-from-bom.eml", "mbox", "Body.", nil, ""},
		{"missing-blank-line.eml", "no blank line", "This line starts the body.\nSecond: line", nil, "blank line"},
		{"lost-fold.eml", "lost fold", "Body.", nil, ""},
		{"unbalanced.eml", "unbalanced", "Inner text without a closing boundary.", []string{"a.pdf", "b.pdf"}, "not closed"},
		{"missing-boundary-param.eml", "no boundary parameter", "guessed", []string{"g.pdf"}, "guessed"},
		{"nul-long-lines.eml", "nul and long", strings.Repeat("x", 5000) + "\nnulbyte", nil, ""},
	}
	for _, tt := range tests {
		for v, res := range convertAll(t, tt.file, oneRcpt) {
			m := res.Message
			if m.Subject != tt.subject || strings.TrimSpace(lf(m.Body.Content)) != tt.body {
				t.Errorf("%s (%s): subject %q body %q", tt.file, v, m.Subject, m.Body.Content)
			}
			if got := strings.Join(names(m.Attachments), ","); got != strings.Join(tt.atts, ",") {
				t.Errorf("%s (%s): attachments %q", tt.file, v, got)
			}
			if tt.warn != "" && !hasWarning(res, tt.warn) {
				t.Errorf("%s (%s): warnings %q lack %q", tt.file, v, res.Warnings, tt.warn)
			}
		}
	}
	res := convertAll(t, "lost-fold.eml", oneRcpt)["LF"]
	if hs := res.Message.InternetMessageHeaders; len(hs) != 1 || hs[0].Value != "first part second part without indent" {
		t.Errorf("lost fold: %q", hs)
	}
}

// Rules 1-2: how a header block starts and ends.
func TestHeaderBlockEdgeCases(t *testing.T) {
	tests := []struct {
		name, msg, subject, body string
	}{
		{"no header at all", "just a line\nand another\n", "", "just a line\nand another"},
		{"leading blank line", "\nSubject: s\n\nbody\n", "s", "body"},
		{"whitespace line ends header", "Subject: s\n \nbody\n", "s", "body"},
		{"continuation before fields", " junk\nSubject: s\n\nbody\n", "s", "body"},
		{"header only", "Subject: s\n", "s", ""},
		{"bare CR inside", "Subject: a\rb\n\nbody\n", "a b", "body"},
	}
	for _, tt := range tests {
		res := convertString(t, tt.msg, oneRcpt)
		if res.Message.Subject != tt.subject || strings.TrimSpace(res.Message.Body.Content) != tt.body {
			t.Errorf("%s: subject %q body %q", tt.name, res.Message.Subject, res.Message.Body.Content)
		}
	}
}

// Rules 3-5: delimiters, missing parts, digest defaults.
func TestMultipartEdgeCases(t *testing.T) {
	tests := []struct {
		name, msg, body string
		atts            int
	}{
		{"text after the boundary", "Content-Type: multipart/mixed; boundary=b\n\n--b junk\n\nfirst\n--b-- trailing\nepilogue\n", "first", 0},
		{"longer boundary is text", "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--bb\ny\n--b--\n", "x\n--bb\ny", 0},
		{"no parts at all", "Content-Type: multipart/mixed; boundary=b\n\nonly text\n", "only text", 0},
		{"empty boundary", "Content-Type: multipart/mixed; boundary=\"\"\n\nonly text\n", "only text", 0},
		{"digest defaults to messages", "Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: one\n\n1\n--b\n\nSubject: two\n\n2\n--b--\n", "", 2},
		{"signed", "Content-Type: multipart/signed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsigned text\n--b\nContent-Type: application/pkcs7-signature\n\nsig\n--b--\n", "signed text", 1},
	}
	for _, tt := range tests {
		res := convertString(t, "Subject: m\n"+tt.msg, oneRcpt)
		if strings.TrimSpace(res.Message.Body.Content) != tt.body || len(res.Message.Attachments) != tt.atts {
			t.Errorf("%s: body %q attachments %q", tt.name, res.Message.Body.Content, names(res.Message.Attachments))
		}
	}
	res := convertString(t, "Subject: d\nContent-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: one\n\n1\n--b--\n", oneRcpt)
	if a := res.Message.Attachments; len(a) != 1 || a[0].Name != "one.eml" || a[0].ContentType != "message/rfc822" {
		t.Errorf("digest: %+v", a)
	}
}

// Errors and rule 8: Convert fails only when no message can be produced, with an error
// whose InvalidContent method is true and whose text carries no content.
func TestErrors(t *testing.T) {
	type contentError interface {
		error
		InvalidContent() bool
		TooLarge() bool
	}
	big := "X-Big: " + strings.Repeat("s3cret ", 200) + "\n\nbody\n"
	tests := []struct {
		name     string
		in       string
		opts     Options
		tooLarge bool
	}{
		{"empty", "", Options{}, false},
		{"blank", " \r\n\r\n", Options{}, false},
		{"header too big", big, Options{MaxHeaderBytes: 512}, false},
		{"message too big", big, Options{MaxBytes: 100}, true},
	}
	for _, tt := range tests {
		res, err := Convert(strings.NewReader(tt.in), oneRcpt, tt.opts)
		var ce contentError
		if res != nil || !errors.As(err, &ce) || !ce.InvalidContent() || ce.TooLarge() != tt.tooLarge {
			t.Errorf("%s: %v, %v", tt.name, res, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error text leaks content: %v", tt.name, err)
		}
	}
	readErr := errors.New("connection reset")
	_, err := Convert(io.MultiReader(strings.NewReader("Subject: x\n"), errReader{readErr}), oneRcpt, Options{})
	var ce contentError
	if !errors.Is(err, readErr) || errors.As(err, &ce) {
		t.Errorf("read error: %v", err)
	}
	// A part header over the limit only makes that part opaque.
	msg := "Subject: p\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n--b\n" + strings.TrimSuffix(big, "\n\nbody\n") + "\n\npart\n--b--\n"
	res, err := Convert(strings.NewReader(msg), oneRcpt, Options{MaxHeaderBytes: 512})
	if err != nil || len(res.Message.Attachments) != 1 || !bytes.Contains(res.Message.Attachments[0].ContentBytes, []byte("part")) {
		t.Errorf("oversized part header: %v %+v", err, res)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// Rule 5: no Content-Type is text/plain, an invalid one reads as text/plain.
func TestDefaultContentType(t *testing.T) {
	for _, ct := range []string{"", "Content-Type: text\n", "Content-Type: \"\"\n", "Content-Type: text/plain/x\n"} {
		res := convertString(t, "Subject: d\n"+ct+"\nreadable\n", oneRcpt)
		if res.Message.Body.ContentType != "Text" || strings.TrimSpace(res.Message.Body.Content) != "readable" {
			t.Errorf("%q: body %+v", ct, res.Message.Body)
		}
	}
}

// Warnings are deduplicated and capped, so hostile input cannot grow them.
func TestWarningsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: w\nContent-Type: multipart/mixed; boundary=b\n\n")
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, "--b\nContent-Type: text/plain; charset=bogus-%d\n\nx\n", i)
	}
	res := convertString(t, b.String()+"--b--\n", oneRcpt)
	if len(res.Warnings) != maxWarnings || res.Warnings[maxWarnings-1] != "251 more warnings" {
		t.Errorf("%d warnings: %q", len(res.Warnings), res.Warnings)
	}
	res = convertString(t, strings.Repeat("Content-Type: text/plain; charset=bogus\n", 1)+"\nx\n", oneRcpt)
	if len(res.Warnings) != 1 {
		t.Errorf("warnings %q", res.Warnings)
	}
}
