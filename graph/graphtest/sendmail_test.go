package graphtest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestSendMailJSONSuccess(t *testing.T) {
	s := New(t, Config{})
	tok := s.MintAccessToken([]string{"Mail.Send"}, time.Hour)
	pdf := []byte("%PDF-1.4 fake")
	png := []byte{0x89, 'P', 'N', 'G', 0, 1, 2, 3}
	body := fmt.Sprintf(`{
  "message": {
    "subject": "Scan from MFP-3F",
    "body": { "contentType": "HTML", "content": "<p>See attached.</p><img src=\"cid:logo\">" },
    "toRecipients":  [ { "emailAddress": { "address": "alice@contoso.com", "name": "Alice" } } ],
    "ccRecipients":  [ { "emailAddress": { "address": "bob@contoso.com" } } ],
    "bccRecipients": [ { "emailAddress": { "address": "archive@contoso.com" } } ],
    "replyTo":       [ { "emailAddress": { "address": "helpdesk@contoso.com" } } ],
    "from": { "emailAddress": { "address": "Relay@Contoso.com" } },
    "importance": "High",
    "isReadReceiptRequested": true,
    "internetMessageHeaders": [
      { "name": "X-Relayed-By", "value": "graphrelay/1.0" },
      { "name": "x-original-client", "value": "10.1.2.3" }
    ],
    "singleValueExtendedProperties": [ { "id": "String 0x1042", "value": "<orig@id>" } ],
    "attachments": [
      { "@odata.type": "#microsoft.graph.fileAttachment", "name": "scan.pdf",
        "contentType": "application/pdf", "contentBytes": %q },
      { "@odata.type": "#microsoft.graph.fileAttachment", "name": "logo.png",
        "contentType": "image/png", "contentBytes": %q, "isInline": true, "contentId": "logo" }
    ]
  },
  "saveToSentItems": "false"
}`, base64.StdEncoding.EncodeToString(pdf), base64.StdEncoding.EncodeToString(png))
	g := sendJSON(t, s, tok, "relay@contoso.com", body, "client-request-id", "7b1f1c1e-9c7d-4a0e-8f4e-2f9b5b0a1c33")
	if g.status != http.StatusAccepted || len(g.body) != 0 {
		t.Fatalf("status %d body %q", g.status, g.body)
	}
	if !guidRE.MatchString(g.header.Get("request-id")) || g.header.Get("client-request-id") != "7b1f1c1e-9c7d-4a0e-8f4e-2f9b5b0a1c33" {
		t.Errorf("ids: request-id %q client-request-id %q", g.header.Get("request-id"), g.header.Get("client-request-id"))
	}
	ds := s.Deliveries()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries", len(ds))
	}
	d := ds[0]
	if d.Kind != "json" || d.Mailbox != "relay@contoso.com" || d.SaveToSentItems || d.RequestID != g.header.Get("request-id") ||
		d.ClientRequestID != "7b1f1c1e-9c7d-4a0e-8f4e-2f9b5b0a1c33" || d.At.IsZero() {
		t.Errorf("delivery %+v", d)
	}
	m := d.Message
	if m.Subject != "Scan from MFP-3F" || m.BodyType != "html" || !strings.Contains(m.Body, "cid:logo") || m.Importance != "high" || !m.ReadReceipt {
		t.Errorf("message %+v", m)
	}
	if len(m.To) != 1 || m.To[0] != (Address{"Alice", "alice@contoso.com"}) || len(m.Cc) != 1 || len(m.Bcc) != 1 ||
		m.Bcc[0].Address != "archive@contoso.com" || len(m.ReplyTo) != 1 || m.From == nil || m.From.Address != "Relay@Contoso.com" {
		t.Errorf("addresses %+v", m)
	}
	if len(m.Headers) != 2 || m.Headers[1] != (Header{"x-original-client", "10.1.2.3"}) {
		t.Errorf("headers %+v", m.Headers)
	}
	if len(m.ExtendedProperties) != 1 || m.ExtendedProperties[0] != (Header{"String 0x1042", "<orig@id>"}) {
		t.Errorf("extended properties %+v", m.ExtendedProperties)
	}
	if len(m.Attachments) != 2 || !bytes.Equal(m.Attachments[0].Content, pdf) || m.Attachments[0].Name != "scan.pdf" ||
		!bytes.Equal(m.Attachments[1].Content, png) || !m.Attachments[1].IsInline || m.Attachments[1].ContentID != "logo" ||
		m.Attachments[1].ContentType != "image/png" {
		t.Errorf("attachments %+v", m.Attachments)
	}
	grs := s.GraphRequests()
	if len(grs) != 1 || grs[0].Status != 202 || grs[0].Method != "POST" || grs[0].Mailbox != "relay@contoso.com" ||
		grs[0].Path != "/v1.0/users/relay@contoso.com/sendMail" || grs[0].End.Before(grs[0].Start) {
		t.Errorf("graph requests %+v", grs)
	}
}

func TestSendMailJSONVariants(t *testing.T) {
	s := New(t, Config{})
	tok := s.MintAccessToken([]string{"Mail.Send"}, time.Hour)
	pascal := `{"Message":{"subject":"p","toRecipients":[{"emailAddress":{"address":"a@contoso.com"}}]},"SaveToSentItems":false}`
	g := graphDo(t, s.HTTPClient(), http.MethodPost, s.GraphURL()+"/v1.0/users/relay%40contoso.com/microsoft.graph.sendMail",
		tok, "application/json; charset=utf-8", []byte(pascal))
	if g.status != 202 {
		t.Fatalf("PascalCase + namespaced action: %d %s", g.status, g.body)
	}
	if d := s.Deliveries()[0]; d.SaveToSentItems || d.Mailbox != "relay@contoso.com" || d.Message.BodyType != "text" {
		t.Errorf("delivery %+v", d)
	}
	// Without a client-request-id, Graph echoes its own request id.
	if g.header.Get("client-request-id") != g.header.Get("request-id") {
		t.Errorf("client-request-id %q request-id %q", g.header.Get("client-request-id"), g.header.Get("request-id"))
	}
	if g := sendJSON(t, s, tok, "relay@contoso.com", simpleMessage); g.status != 202 || !s.Deliveries()[1].SaveToSentItems {
		t.Errorf("default saveToSentItems: %d", g.status)
	}
}

func TestSendMailJSONRules(t *testing.T) {
	s := New(t, Config{SendAs: map[string][]string{"relay@contoso.com": {"noreply@contoso.com"}}})
	tok := s.MintAccessToken([]string{"Mail.Send"}, time.Hour)
	to := `"toRecipients":[{"emailAddress":{"address":"alice@contoso.com"}}]`
	msg := func(extra string) string { return `{"message":{"subject":"s",` + to + extra + `}}` }
	att := func(a string) string { return msg(`,"attachments":[` + a + `]`) }
	headers := func(n int) string {
		var hs []string
		for i := range n {
			hs = append(hs, fmt.Sprintf(`{"name":"X-H%d","value":"v"}`, i))
		}
		return msg(`,"internetMessageHeaders":[` + strings.Join(hs, ",") + `]`)
	}
	cases := []struct {
		name, body    string
		status        int
		code, message string
	}{
		{"missing message", `{}`, 400, "ErrorInvalidRequest", ""},
		{"null message", `{"message":null}`, 400, "ErrorInvalidRequest", ""},
		{"message properties at the top level", `{"subject":"s",` + to + `}`, 400, "RequestBodyRead",
			"The parameter 'subject' in the request payload is not a valid parameter for the operation 'sendMail'."},
		{"invalid JSON", `{"message":`, 400, "BadRequest", invalidJSONMessage},
		{"empty body", ``, 400, "BadRequest", invalidJSONMessage},
		{"duplicate parameter", `{"message":{},"Message":{}}`, 400, "RequestBodyRead", ""},
		{"unknown property", msg(`,"foo":1`), 400, "RequestBodyRead",
			"The property 'foo' does not exist on type 'microsoft.graph.message'. Make sure to only use property names that are defined by the type or mark the type as open type."},
		{"read-only property", msg(`,"id":"AAMk"`), 400, "RequestBodyRead", ""},
		{"read-only isDraft", msg(`,"isDraft":true`), 400, "RequestBodyRead", ""},
		{"body content type", msg(`,"body":{"contentType":"markdown","content":"x"}`), 400, "RequestBodyRead", ""},
		{"subject not a string", `{"message":{"subject":5,` + to + `}}`, 400, "RequestBodyRead", ""},
		{"importance", msg(`,"importance":"urgent"`), 400, "RequestBodyRead", ""},
		{"recipient without emailAddress", `{"message":{"toRecipients":[{}]}}`, 400, "ErrorInvalidRecipients", invalidRecipientsMessage},
		{"recipient address invalid", `{"message":{"toRecipients":[{"emailAddress":{"address":"not-an-address"}}]}}`, 400, "ErrorInvalidRecipients", ""},
		{"recipient with display name", `{"message":{"toRecipients":[{"emailAddress":{"address":"Bob <bob@contoso.com>"}}]}}`, 400, "ErrorInvalidRecipients", ""},
		{"recipient as a string", `{"message":{"toRecipients":["bob@contoso.com"]}}`, 400, "RequestBodyRead", ""},
		{"recipient unknown property", `{"message":{"toRecipients":[{"emailAddress":{"address":"bob@contoso.com","type":"smtp"}}]}}`, 400, "RequestBodyRead", ""},
		{"no recipients", `{"message":{"subject":"s"}}`, 400, "ErrorInvalidRecipients", ""},
		{"header without x-", msg(`,"internetMessageHeaders":[{"name":"Notification-Center-Parcel-ID","value":"1"}]`), 400,
			"InvalidInternetMessageHeader", "The internet message header name 'Notification-Center-Parcel-ID' should start with 'x-' or 'X-'."},
		{"six headers", headers(6), 400, "InvalidInternetMessageHeaderCollection",
			"Maximum number of headers in one message should be less than or equal to 5."},
		{"empty header collection", headers(0), 400, "InvalidInternetMessageHeaderCollection", ""},
		{"attachment without @odata.type", att(`{"name":"a.txt","contentBytes":"YQ=="}`), 400, "RequestBodyRead",
			"The property 'contentBytes' does not exist on type 'microsoft.graph.attachment'. Make sure to only use property names that are defined by the type or mark the type as open type."},
		{"attachment unknown type", att(`{"@odata.type":"#microsoft.graph.blobAttachment","name":"a"}`), 400, "RequestBodyRead", ""},
		{"file attachment without name", att(`{"@odata.type":"#microsoft.graph.fileAttachment","contentBytes":"YQ=="}`), 400, "ErrorInvalidRequest", ""},
		{"file attachment without bytes", att(`{"@odata.type":"#microsoft.graph.fileAttachment","name":"a"}`), 400, "ErrorInvalidRequest", ""},
		{"invalid base64", att(`{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"@@@"}`), 400, "RequestBodyRead", ""},
		{"base64url is not Edm.Binary", att(`{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"-_-_"}`), 400, "RequestBodyRead", ""},
		{"isInline as a string", att(`{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"YQ==","isInline":"true"}`), 400, "RequestBodyRead", ""},
		{"attachment size", att(`{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"YQ==","size":1}`), 400, "RequestBodyRead", ""},
		{"attachment id", att(`{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"YQ==","id":"x"}`), 400, "RequestBodyRead", ""},
		{"saveToSentItems not boolean", `{"message":{` + to + `},"saveToSentItems":"maybe"}`, 400, "RequestBodyRead", ""},
		{"from another address", msg(`,"from":{"emailAddress":{"address":"ceo@contoso.com"}}`), 403, "ErrorSendAsDenied", sendAsDeniedMessage},
		{"sender another address", msg(`,"sender":{"emailAddress":{"address":"ceo@contoso.com"}}`), 403, "ErrorSendAsDenied", sendAsDeniedMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := sendJSON(t, s, tok, "relay@contoso.com", tc.body, "client-request-id", "c0ffee00-0000-4000-8000-000000000001")
			code, message := g.errorCode(t)
			if g.status != tc.status || code != tc.code || (tc.message != "" && message != tc.message) {
				t.Errorf("got %d %s %q, want %d %s %q", g.status, code, message, tc.status, tc.code, tc.message)
			}
			if inner := g.json(t)["error"].(map[string]any)["innerError"].(map[string]any); inner["client-request-id"] != "c0ffee00-0000-4000-8000-000000000001" ||
				!regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`).MatchString(inner["date"].(string)) {
				t.Errorf("innerError %v", inner)
			}
		})
	}
	if n := len(s.Deliveries()); n != 0 {
		t.Errorf("%d rejected messages were recorded as delivered", n)
	}

	accepted := []struct{ name, body string }{
		{"from granted by SendAs", msg(`,"from":{"emailAddress":{"address":"NoReply@contoso.com"}}`)},
		{"from the mailbox itself", msg(`,"from":{"emailAddress":{"address":"RELAY@contoso.com","name":"Relay"}}`)},
		{"nulls and annotations", `{"message":{"subject":null,"body":null,"ccRecipients":null,` + to + `,"categories@odata.type":"Collection(String)","categories":["a"]},"saveToSentItems":null}`},
		{"contentLocation is accepted", att(`{"@odata.type":"#microsoft.graph.fileAttachment","name":"a","contentBytes":"YQ==","contentLocation":"x"}`)},
		{"five headers", headers(5)},
		{"flag", msg(`,"flag":{"flagStatus":"flagged","dueDateTime":{"dateTime":"2026-01-01T00:00:00","timeZone":"UTC"}}`)},
	}
	for _, tc := range accepted {
		if g := sendJSON(t, s, tok, "relay@contoso.com", tc.body); g.status != 202 {
			t.Errorf("%s: %d %s", tc.name, g.status, g.body)
		}
	}

	g := graphDo(t, s.HTTPClient(), http.MethodPost, s.GraphURL()+"/v1.0/users/relay@contoso.com/sendMail", tok, "application/xml", []byte(simpleMessage))
	if g.status != http.StatusUnsupportedMediaType {
		t.Errorf("application/xml: %d", g.status)
	}
	g = graphDo(t, s.HTTPClient(), http.MethodPost, s.GraphURL()+"/v1.0/users/relay@contoso.com/sendMail", tok, "", []byte(simpleMessage))
	if g.status != http.StatusUnsupportedMediaType {
		t.Errorf("no content type: %d", g.status)
	}
}

// wrap76 base64-encodes and wraps at 76 columns, like the doc example.
func wrap76(b []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	for len(enc) > 76 {
		out.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	out.WriteString(enc)
	return out.Bytes()
}

const testMIME = "From: Relay <relay@contoso.com>\r\n" +
	"To: Alex Wilber <AlexW@contoso.com>, bob@contoso.com\r\n" +
	"Cc: carol@contoso.com\r\n" +
	"Bcc: archive@contoso.com\r\n" +
	"Reply-To: helpdesk@contoso.com\r\n" +
	"Subject: =?utf-8?q?Caf=C3=A9_report?=\r\n" +
	"X-Relayed-By: graphrelay\r\n" +
	"Message-ID: <abc@contoso.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: multipart/alternative; boundary=\"b2\"\r\n" +
	"\r\n" +
	"--b2\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"plain body\r\n" +
	"--b2\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"<p>html =3D body</p>\r\n" +
	"--b2--\r\n" +
	"--b1\r\n" +
	"Content-Type: application/pdf; name=\"scan.pdf\"\r\n" +
	"Content-Disposition: attachment; filename=\"scan.pdf\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"JVBERi0xLjQK\r\n" +
	"--b1--\r\n"

func sendMIME(t *testing.T, s *Server, tok, mailbox string, body []byte) graphReply {
	t.Helper()
	return graphDo(t, s.HTTPClient(), http.MethodPost, s.GraphURL()+"/v1.0/users/"+mailbox+"/sendMail", tok, "text/plain", body)
}

func TestSendMailMIME(t *testing.T) {
	s := New(t, Config{})
	tok := s.MintAccessToken([]string{"Mail.Send"}, time.Hour)
	g := sendMIME(t, s, tok, "relay@contoso.com", wrap76([]byte(testMIME)))
	if g.status != 202 || len(g.body) != 0 {
		t.Fatalf("MIME: %d %s", g.status, g.body)
	}
	d := s.Deliveries()[0]
	if d.Kind != "mime" || string(d.MIME) != testMIME || !d.SaveToSentItems {
		t.Errorf("delivery kind %q save %v mime %d bytes", d.Kind, d.SaveToSentItems, len(d.MIME))
	}
	m := d.Message
	if m.Subject != "Café report" || m.From == nil || m.From.Address != "relay@contoso.com" || len(m.To) != 2 ||
		m.To[0] != (Address{"Alex Wilber", "AlexW@contoso.com"}) || len(m.Cc) != 1 || len(m.Bcc) != 1 || len(m.ReplyTo) != 1 {
		t.Errorf("addressing %+v", m)
	}
	if m.BodyType != "html" || strings.TrimSpace(m.Body) != "<p>html = body</p>" {
		t.Errorf("body %q %q", m.BodyType, m.Body)
	}
	if len(m.Attachments) != 1 || m.Attachments[0].Name != "scan.pdf" || string(m.Attachments[0].Content) != "%PDF-1.4\n" {
		t.Errorf("attachments %+v", m.Attachments)
	}
	if len(m.Headers) != 1 || m.Headers[0].Value != "graphrelay" || m.InternetMessageID != "<abc@contoso.com>" {
		t.Errorf("headers %+v id %q", m.Headers, m.InternetMessageID)
	}

	spoofed := strings.Replace(testMIME, "From: Relay <relay@contoso.com>", "From: ceo@contoso.com", 1)
	cases := []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"From not the mailbox", wrap76([]byte(spoofed)), 403, "ErrorSendAsDenied"},
		{"invalid base64", []byte("not*base64!"), 400, "ErrorMimeContentInvalidBase64String"},
		{"JSON sent as text/plain", []byte(simpleMessage), 400, "ErrorMimeContentInvalidBase64String"},
		{"empty", []byte(""), 400, "ErrorMimeContentInvalid"},
		{"not a message", wrap76([]byte("just some text without headers")), 400, "ErrorMimeContentInvalid"},
		{"no recipients", wrap76([]byte("From: relay@contoso.com\r\nSubject: x\r\n\r\nbody\r\n")), 400, "ErrorInvalidRecipients"},
	}
	for _, tc := range cases {
		g := sendMIME(t, s, tok, "relay@contoso.com", tc.body)
		if code, _ := g.errorCode(t); g.status != tc.status || code != tc.code {
			t.Errorf("%s: %d %s", tc.name, g.status, g.body)
		}
	}
	if g := sendMIME(t, s, tok, "relay@contoso.com", wrap76([]byte(spoofed))); g.status == 403 {
		_, msg := g.errorCode(t)
		if msg != sendAsDeniedMessage {
			t.Errorf("message %q", msg)
		}
	}
	if n := len(s.Deliveries()); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
}
