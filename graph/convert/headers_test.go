package convert

import (
	"reflect"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/graph"
)

// Rule 10: subject and display names decode RFC 2047 in any charset, also
// malformed, and raw 8-bit text as UTF-8 or else Windows-1252.
func TestSubjectAndNames(t *testing.T) {
	tests := []struct {
		file, subject, fromName string
	}{
		// Blanks between encoded words vanish (RFC 2047 §6.2), across charsets too.
		{"subject-encoded.eml", "Scan –テストééПриветunterminated", "Jörg Müller"},
		{"subject-8bit-utf8.eml", "Sicherung fehlgeschlagen – Größe", "NAS über"},
		{"subject-8bit-latin1.eml", "Numérisation terminée € 10", "Imprimante étage"},
	}
	for _, tt := range tests {
		for v, res := range convertAll(t, tt.file, Envelope{Recipients: []string{"yamada@example.com"}}) {
			if res.Message.Subject != tt.subject {
				t.Errorf("%s (%s): subject %q, want %q", tt.file, v, res.Message.Subject, tt.subject)
			}
			if len(res.HeaderFrom) != 1 || res.HeaderFrom[0].Name != tt.fromName {
				t.Errorf("%s (%s): from %q, want name %q", tt.file, v, res.HeaderFrom, tt.fromName)
			}
		}
	}
	res := convertAll(t, "subject-encoded.eml", Envelope{Recipients: []string{"yamada@example.com"}})["CRLF"]
	if got := res.Message.ToRecipients; len(got) != 1 || got[0].EmailAddress.Name != "山田" {
		t.Errorf("to = %+v, want name 山田", got)
	}
}

// Rule 10: control characters and the 255-unit subject limit.
func TestSubjectLimits(t *testing.T) {
	long := strings.Repeat("é", 300)
	res := convertString(t, "Subject: "+long+"\n\nx\n", oneRcpt)
	if n := len([]rune(res.Message.Subject)); n != maxSubjectUTF16 {
		t.Errorf("subject length %d, want %d", n, maxSubjectUTF16)
	}
	if !hasWarning(res, "subject longer") {
		t.Errorf("no warning for a cut subject: %q", res.Warnings)
	}
	res = convertString(t, "Subject: tab\there\x01\n\nx\n", oneRcpt)
	if res.Message.Subject != "tab here" {
		t.Errorf("subject %q: control characters not replaced", res.Message.Subject)
	}
}

// Rule 13: Importance, else X-Priority, else X-MSMail-Priority, else Priority;
// normal or absent omits the field.
func TestImportance(t *testing.T) {
	tests := []struct{ headers, want string }{
		{"", ""},
		{"Importance: high\n", "high"},
		{"Importance: Low\n", "low"},
		{"Importance: normal\nX-Priority: 1\n", ""},
		{"X-Priority: 1 (Highest)\n", "high"},
		{"X-Priority: 2\n", "high"},
		{"X-Priority: 3 (Normal)\n", ""},
		{"X-Priority: 4\n", "low"},
		{"X-Priority: 5 (Lowest)\nImportance: high\n", "high"},
		{"X-MSMail-Priority: High\n", "high"},
		{"Priority: urgent\n", "high"},
		{"Priority: non-urgent\n", "low"},
		{"Priority: normal\n", ""},
		{"Importance: bogus\nX-Priority: 1\n", "high"},
		{"X-Priority: High\n", "high"},
		{"X-Priority: 9\nPriority: non-urgent\n", "low"},
	}
	for _, tt := range tests {
		res := convertString(t, tt.headers+"Subject: p\n\nx\n", oneRcpt)
		if res.Message.Importance != tt.want {
			t.Errorf("%q: importance %q, want %q", tt.headers, res.Message.Importance, tt.want)
		}
	}
}

// Rules 14-16: up to five X- headers, preferred ones first, then message order,
// priority headers last; excluded prefixes, empty values and repeated
// names skipped; values unfolded and decoded; read receipt; threading.
func TestHeadersFile(t *testing.T) {
	for v, res := range convertAll(t, "headers.eml", oneRcpt) {
		m := res.Message
		want := []graph.Header{
			{Name: "X-Mailer", Value: "Legacy ERP 4.2"},
			{Name: "X-Auto-Response-Suppress", Value: "All"},
			{Name: "X-Originating-IP", Value: "[10.1.2.3]"},
			{Name: "X-Custom-One", Value: "first"},
			{Name: "X-Cron-Env", Value: "<SHELL=/bin/sh>"},
		}
		if !reflect.DeepEqual(m.InternetMessageHeaders, want) {
			t.Errorf("%s: headers\n%q\nwant\n%q", v, m.InternetMessageHeaders, want)
		}
		if m.Importance != "high" {
			t.Errorf("%s: importance %q", v, m.Importance)
		}
		if !m.IsReadReceiptRequested {
			t.Errorf("%s: read receipt not requested", v)
		}
		props := []graph.ExtendedProperty{
			{ID: "String 0x1042", Value: "<parent@example.com>"},
			{ID: "String 0x1039", Value: "<root@example.com> <parent@example.com>"},
		}
		if !reflect.DeepEqual(m.SingleValueExtendedProperties, props) {
			t.Errorf("%s: properties %q", v, m.SingleValueExtendedProperties)
		}
		if res.MessageID != "headers@example.com" {
			t.Errorf("%s: message id %q", v, res.MessageID)
		}
	}
}

// Rule 14: unfolding, decoding, the line limit, MaxHeaders, exclusions.
func TestXHeaderDetails(t *testing.T) {
	msg := "X-Folded: part one\n part two =?utf-8?q?=C3=A9?=\nX-Priority: 1\nX-Long: " + strings.Repeat("é", 600) +
		"\nX-" + strings.Repeat("n", 80) + ": too long a name\nSubject: x\n\nx\n"
	res := convertString(t, msg, oneRcpt)
	hs := res.Message.InternetMessageHeaders
	if len(hs) != 3 || hs[0].Name != "X-Folded" || hs[0].Value != "part one part two é" || hs[1].Name != "X-Long" || hs[2].Name != "X-Priority" {
		t.Fatalf("headers %q", hs)
	}
	if n := len(hs[1].Name) + 2 + len(hs[1].Value); n > maxHeaderLine || !strings.HasSuffix(hs[1].Value, "é") {
		t.Errorf("X-Long is %d octets or was cut inside a character", n)
	}
	for _, tt := range []struct{ max, want int }{{0, 3}, {2, 2}, {9, 3}, {-1, 0}} {
		res, err := Convert(strings.NewReader(msg), oneRcpt, Options{MaxHeaders: tt.max})
		if err != nil || len(res.Message.InternetMessageHeaders) != tt.want {
			t.Errorf("MaxHeaders %d: %d headers, want %d (%v)", tt.max, len(res.Message.InternetMessageHeaders), tt.want, err)
		}
	}
	res = convertString(t, "Subject: none\nX-Spam-Status: No\nX-MS-Has-Attach: yes\n\nx\n", oneRcpt)
	if res.Message.InternetMessageHeaders != nil {
		t.Errorf("excluded headers carried: %q", res.Message.InternetMessageHeaders)
	}
}

// Rule 16: message IDs are extracted from untidy values.
func TestThreadingValues(t *testing.T) {
	tests := []struct{ irt, refs, wantIRT, wantRefs string }{
		{"<a@x>", "", "<a@x>", ""},
		{"a@x", "junk", "<a@x>", ""},
		{"Your message of Monday", "<a@x> junk <b@x>", "", "<a@x> <b@x>"},
		{"<a@x> <b@x>", "", "<a@x>", ""},
	}
	for _, tt := range tests {
		msg := "Subject: t\n"
		if tt.irt != "" {
			msg += "In-Reply-To: " + tt.irt + "\n"
		}
		if tt.refs != "" {
			msg += "References: " + tt.refs + "\n"
		}
		res := convertString(t, msg+"\nx\n", oneRcpt)
		got := map[string]string{}
		for _, p := range res.Message.SingleValueExtendedProperties {
			got[p.ID] = p.Value
		}
		if got[propInReplyTo] != tt.wantIRT || got[propReferences] != tt.wantRefs {
			t.Errorf("%q/%q: got %q", tt.irt, tt.refs, got)
		}
	}
	// A long chain keeps the first and the most recent IDs.
	var ids []string
	for i := 0; i < 200; i++ {
		ids = append(ids, "<message-"+strings.Repeat("x", 20)+itoa(i)+"@example.com>")
	}
	got := references(strings.Join(ids, " "))
	if len(got) > maxReferences || !strings.HasPrefix(got, ids[0]+" ") || !strings.HasSuffix(got, ids[199]) {
		t.Errorf("references cut wrong: %d bytes", len(got))
	}
}

// Rule 12: Reply-To maps to replyTo.
func TestReplyTo(t *testing.T) {
	res := convertAll(t, "recipients.eml", oneRcpt)["CRLF"]
	want := []graph.Recipient{
		{EmailAddress: graph.EmailAddress{Address: "helpdesk@example.com", Name: "Helpdesk"}},
		{EmailAddress: graph.EmailAddress{Address: "second@example.com"}},
	}
	if !reflect.DeepEqual(res.Message.ReplyTo, want) {
		t.Errorf("replyTo %+v", res.Message.ReplyTo)
	}
}
