package convert

import (
	"bytes"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/graph"
)

// What the recipient sees: each case names the rule of the package
// documentation that decides it, and compares with what Thunderbird,
// Apple Mail and Outlook show for the same message.
func TestWhatReadersShow(t *testing.T) {
	type att struct {
		name, bytes string
		inline      bool
		cid         string
	}
	tests := []struct {
		rule, file string
		ct         string
		body       string // the body, with LF line endings and trimmed
		atts       []att  // bytes "" is not compared
	}{
		{
			rule: "21a: a named inline text part is the body of a message without one, and stays an attachment",
			file: "inline-named-text.eml", ct: graph.BodyText,
			body: "a simple kind of mirror\nto reflect upon our own",
			atts: []att{{name: "msg.txt", bytes: "a simple kind of mirror\nto reflect upon our own\n"}, {name: "scan.pdf"}},
		},
		{
			rule: "21a: a text part marked attachment is never the body",
			file: "text-attachment-only.eml", ct: graph.BodyText, body: "",
			atts: []att{{name: "backup.log"}},
		},
		{
			rule: "22: other text renderings of the chosen alternative (text/watch-html) are not attachments",
			file: "alt-renderings.eml", ct: graph.BodyHTML, body: "<p>HTML version.</p>",
		},
		{
			rule: "22: a calendar alternative carried elsewhere in the message is not attached twice",
			file: "alt-calendar-copy.eml", ct: graph.BodyHTML, body: "<p>You are invited.</p>",
			atts: []att{{name: "invite.ics"}},
		},
		{
			rule: "22: a calendar alternative carried nowhere else is kept",
			file: "alt-related-nested.eml", ct: graph.BodyHTML, body: `<p>Logo: <img src="cid:logo@example.com"></p>`,
			atts: []att{{name: "logo.png", inline: true, cid: "logo@example.com"}, {name: "attachment-2.ics"}, {name: "scan.pdf"}},
		},
		{
			rule: "25: a line break in a file name becomes a blank",
			file: "name-newline.eml", ct: graph.BodyText, body: "See the reports.",
			atts: []att{{name: "Annual Report 2026.pdf"}, {name: "Quarterly Figures.pdf"}},
		},
		{
			rule: "3: the last part of an unclosed multipart ends before the message's final line break",
			file: "unclosed-last-part.eml", ct: graph.BodyText, body: "Body.",
			atts: []att{{name: "data.csv", bytes: "a,b\n1,2"}},
		},
	}
	for _, tt := range tests {
		for v, res := range convertAll(t, tt.file, oneRcpt) {
			b := res.Message.Body
			if b.ContentType != tt.ct || strings.TrimSpace(lf(b.Content)) != tt.body {
				t.Errorf("rule %s\n%s (%s): body %s %q, want %s %q", tt.rule, tt.file, v, b.ContentType, b.Content, tt.ct, tt.body)
			}
			as := res.Message.Attachments
			if len(as) != len(tt.atts) {
				t.Errorf("rule %s\n%s (%s): attachments %q, want %d", tt.rule, tt.file, v, names(as), len(tt.atts))
				continue
			}
			for i, w := range tt.atts {
				a := as[i]
				if a.Name != w.name || a.IsInline != w.inline || a.ContentID != w.cid {
					t.Errorf("rule %s\n%s (%s): attachment %d = %q inline=%v cid=%q, want %+v", tt.rule, tt.file, v, i, a.Name, a.IsInline, a.ContentID, w)
				}
				if w.bytes != "" && lf(string(a.ContentBytes)) != w.bytes {
					t.Errorf("rule %s\n%s (%s): %s bytes %q, want %q", tt.rule, tt.file, v, a.Name, a.ContentBytes, w.bytes)
				}
			}
		}
	}
}

// Rule 3: the final line break of an unclosed multipart is dropped once,
// whatever its form, and only one: a blank line the sender wrote stays.
func TestUnclosedFinalLineBreak(t *testing.T) {
	for _, tt := range []struct{ tail, want string }{
		{"x\r\n", "x"},
		{"x\n", "x"},
		{"x", "x"},
		{"x\r\n\r\n", "x\r\n"},
	} {
		msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n" + tt.tail
		res, err := Convert(strings.NewReader(msg), oneRcpt, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if as := res.Message.Attachments; len(as) != 1 || !bytes.Equal(as[0].ContentBytes, []byte(tt.want)) {
			t.Errorf("tail %q: attachments %+v, want bytes %q", tt.tail, as, tt.want)
		}
	}
}

// Rule 26: whatever the HTML's spelling (case, %40, brackets), the image's
// contentId is its Content-ID and the HTML is rewritten to spell it the
// same; a reference that no part answers is left as written.
func TestCIDSpellings(t *testing.T) {
	for _, tt := range []struct{ html, cid, wantHTML, wantCID string }{
		{`<img src="cid:IMG%40X">`, "<img@x>", `<img src="cid:img@x">`, "img@x"},
		{`<img src="CID:Img@X">`, "<img@x>", `<img src="CID:img@x">`, "img@x"},
		{`<img src="cid:a%25b@x">`, "<a%b@x>", `<img src="cid:a%25b@x">`, "a%b@x"},
		{`<img src="cid:missing@x">`, "<img@x>", `<img src="cid:missing@x">`, ""},
	} {
		msg := "Content-Type: multipart/related; boundary=b\n\n--b\nContent-Type: text/html\n\n" + tt.html +
			"\n--b\nContent-Type: image/png\nContent-ID: " + tt.cid + "\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--b--\n"
		res := convertString(t, msg, oneRcpt)
		if got := strings.TrimSpace(res.Message.Body.Content); got != tt.wantHTML {
			t.Errorf("%s: html %q, want %q", tt.html, got, tt.wantHTML)
		}
		if as := res.Message.Attachments; len(as) != 1 || as[0].ContentID != tt.wantCID || as[0].IsInline != (tt.wantCID != "") {
			t.Errorf("%s: attachment %+v, want contentId %q", tt.html, as, tt.wantCID)
		}
	}
}

// Rule 21a: a named "text" part whose bytes are binary (an image sent as
// text/plain) is not taken as the body; it stays an attachment.
func TestNamedBinaryTextIsNotBody(t *testing.T) {
	msg := "Content-Type: text/plain; name=\"rzkly.txt\"\nContent-Transfer-Encoding: base64\n\nR0lGODlhZAAEAIAAAABmzGb/mSH5BAAAAAAALAAAAABkAAQAAAIajI+py+0Po5y02uuA3rz7D4bi\nSJbmiabqKhYAOw==\n"
	res := convertString(t, msg, oneRcpt)
	if res.Message.Body.Content != "" {
		t.Errorf("body %q, want empty", res.Message.Body.Content)
	}
	if as := res.Message.Attachments; len(as) != 1 || as[0].Name != "rzkly.txt" || !bytes.HasPrefix(as[0].ContentBytes, []byte("GIF89a")) {
		t.Errorf("attachments %+v", names(as))
	}
}
