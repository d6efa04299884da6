package relay

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// signedInvite is what passthrough exists for: an S/MIME-signed calendar
// invitation that answers a thread. The header names a stranger the client
// did not send to, and carries a Bcc of its own.
const signedInvite = "From: Room Booking <rooms@facility.lan>\r\n" +
	"To: Alice <alice@company.com>, Stranger <stranger@elsewhere.com>\r\n" +
	"Cc: Bob <bob@company.com>\r\n" +
	"Bcc: hidden@elsewhere.com\r\n" +
	"Subject: =?UTF-8?Q?R=C3=A9union?=\r\n" +
	"Message-ID: <invite-1@facility.lan>\r\n" +
	"In-Reply-To: <thread-0@company.com>\r\n" +
	"References: <thread-0@company.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"sig\"\r\n" +
	"\r\n" +
	"This is a cryptographically signed message in MIME format.\r\n" +
	"\r\n" +
	"--sig\r\n" +
	"Content-Type: multipart/alternative; boundary=\"alt\"\r\n" +
	"\r\n" +
	"--alt\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"R=C3=A9union lundi, salle 2.  \r\n" +
	"--alt\r\n" +
	"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n" +
	"\r\n" +
	"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:invite-1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n" +
	"--alt--\r\n" +
	"--sig\r\n" +
	"Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"Content-Disposition: attachment; filename=\"smime.p7s\"\r\n" +
	"\r\n" +
	"MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIIF\r\n" +
	"--sig--\r\n"

func addrList(as []graphtest.Address) string {
	var out []string
	for _, a := range as {
		out = append(out, strings.ToLower(a.Address))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestMIMEPassthrough(t *testing.T) {
	t.Parallel()
	fake := graphtest.New(t, graphtest.Config{})
	r, logs := newRelay(t, fake, []string{"Mail.Send"}, Options{})
	env := testEnvelope(envelope.FormatMIME, "alice@company.com", "bob@company.com", "archive@company.com")
	env.FromName, env.ReplyTo = "Room Booking (rooms at facility.lan)", "rooms@facility.lan"
	raw := []byte(signedInvite)

	if err := r.Admit(env, bytes.NewReader(raw), int64(len(raw))); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if _, err := r.Send(context.Background(), env, bytes.NewReader(raw), int64(len(raw))); err != nil {
		t.Fatalf("Send: %v", err)
	}
	ds := fake.Deliveries()
	if len(ds) != 1 || ds[0].Kind != "mime" {
		t.Fatalf("deliveries = %+v", ds)
	}
	m := ds[0].Message
	if m.From == nil || m.From.Address != "scans@company.com" || m.From.Name != env.FromName {
		t.Errorf("From = %+v", m.From)
	}
	if got := addrList(m.To); got != "alice@company.com" {
		t.Errorf("To = %s; the stranger is not an envelope recipient", got)
	}
	if got := addrList(m.Cc); got != "bob@company.com" {
		t.Errorf("Cc = %s", got)
	}
	if got := addrList(m.Bcc); got != "archive@company.com" {
		t.Errorf("Bcc = %s; only the envelope-only recipient, never the sender's own Bcc", got)
	}
	if got := addrList(m.ReplyTo); got != "rooms@facility.lan" {
		t.Errorf("Reply-To = %s", got)
	}
	if m.Subject != "Réunion" {
		t.Errorf("Subject = %q", m.Subject)
	}
	// The signed body (everything after the header) arrives byte for byte.
	_, wantBody, _ := strings.Cut(signedInvite, "\r\n\r\n")
	_, gotBody, _ := strings.Cut(string(ds[0].MIME), "\r\n\r\n")
	if gotBody != wantBody {
		t.Errorf("body changed:\n%q\nwant\n%q", gotBody, wantBody)
	}
	for _, h := range []string{"In-Reply-To: <thread-0@company.com>\r\n", "References: <thread-0@company.com>\r\n", "Message-ID: <invite-1@facility.lan>\r\n"} {
		if !strings.Contains(string(ds[0].MIME), h) {
			t.Errorf("%q lost", h)
		}
	}
	if strings.Contains(string(ds[0].MIME), "hidden@elsewhere.com") || strings.Contains(string(ds[0].MIME), "stranger@") {
		t.Error("an address outside the envelope reached Graph")
	}
	for _, want := range []string{"path=mime", "rcpts_removed=1", "bcc_added=1", "bcc_dropped=1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// Passthrough has no large path: over the request limit it is refused
// before anything is sent, at Admit and at Send, whatever
// delivery.large_messages says.
func TestMIMETooLarge(t *testing.T) {
	t.Parallel()
	fake := graphtest.New(t, graphtest.Config{Roles: readWrite})
	r, _ := newRelay(t, fake, readWrite, Options{})
	raw := buildMessage(21, "big mime", []part{{name: "a.pdf", ctype: "application/pdf", size: 2200 * kb}})
	env := testEnvelope(envelope.FormatMIME, "alice@company.com")
	errs := map[string]error{"Admit": r.Admit(env, bytes.NewReader(raw), int64(len(raw)))}
	_, errs["Send"] = r.Send(context.Background(), env, bytes.NewReader(raw), int64(len(raw)))
	for name, err := range errs {
		var e *graph.Error
		if !errors.As(err, &e) || !e.TooLarge() || !strings.Contains(e.Hint(), "no upload path") || !strings.Contains(err.Error(), graph.RequestLimitText) {
			t.Errorf("%s: err = %v (hint %q)", name, err, e.Hint())
		}
	}
	if n := len(fake.GraphRequests()); n != 0 {
		t.Errorf("%d Graph requests", n)
	}
	// Just under the limit it goes.
	small := buildMessage(22, "mime fits", []part{{name: "a.pdf", ctype: "application/pdf", size: 2000 * kb}})
	if err := r.Admit(env, bytes.NewReader(small), int64(len(small))); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if _, err := r.Send(context.Background(), env, bytes.NewReader(small), int64(len(small))); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if ds := fake.Deliveries(); len(ds) != 1 || len(ds[0].Message.Attachments) != 1 || sum(ds[0].Message.Attachments[0].Content) == "" {
		t.Errorf("deliveries = %d", len(ds))
	}
}
