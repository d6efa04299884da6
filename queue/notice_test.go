package queue

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/graph"
)

func testNotice(t *testing.T, kind string, original []byte) (*mail.Message, []byte) {
	t.Helper()
	env := testEnv("scans@example.com", "mfp@printer.lan")
	env.AuthUser = "mfp2"
	env.Size = int64(len(original))
	rec := &Record{Version: 1, Envelope: *env, Attempts: []Attempt{{N: 1}, {N: 2}}}
	if kind == noticeFailed {
		rec.Dead = &DeadLetter{Reason: "permanent"}
	}
	res := result{outcome: OutcomePermanent, requestID: "rid-1", hint: "grant Send As",
		err: &graph.Error{Op: "sendMail", Class: graph.Permanent, Status: 403, Code: "ErrorSendAsDenied"}}
	raw, err := buildNotice(noticeInput{Kind: kind, ID: "06h0notice0000000000000", From: "alerts@example.com",
		To: []string{"it@example.com", "ops@example.com"}, Now: time.Now(), Rec: rec, Res: res,
		Expiry: time.Now().Add(time.Hour), Kept: "/var/spool/graphrelay/failed/" + env.ID}, bytes.NewReader(original), int64(len(original)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("notice is not RFC 5322: %v\n%s", err, raw)
	}
	return m, raw
}

func TestNoticeIsMultipartWithOriginalAttached(t *testing.T) {
	original := []byte("From: MFP <mfp@printer.lan>\r\nTo: alice@example.com\r\nSubject: =?UTF-8?Q?Scan_r=C3=A9sum=C3=A9?=\r\n\r\nbody \xc3\xa9\r\n")
	m, _ := testNotice(t, noticeFailed, original)
	dec := new(mime.WordDecoder)
	subj, _ := dec.DecodeHeader(m.Header.Get("Subject"))
	if subj != "[graphrelay] Undeliverable: Scan résumé" {
		t.Errorf("subject = %q", subj)
	}
	if m.Header.Get("X-Graphrelay-Notice") == "" || m.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("notice markers missing: %v", m.Header)
	}
	if to, _ := m.Header.AddressList("To"); len(to) != 2 {
		t.Errorf("To = %v", to)
	}
	mt, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if mt != "multipart/mixed" {
		t.Fatalf("content type %q", mt)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	text, err := mr.NextPart() // decodes quoted-printable
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := io.ReadAll(text)
	for _, want := range []string{"Scan résumé", "mfp@printer.lan", "alice@example.com, bob@example.com",
		"scans@example.com", "mfp2", "ErrorSendAsDenied", "rid-1", "grant Send As", "queue requeue", "Attempts:    2"} {
		if !strings.Contains(string(tb), want) {
			t.Errorf("text part lacks %q:\n%s", want, tb)
		}
	}
	att, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if att.Header.Get("Content-Type") != "message/rfc822" || att.Header.Get("Content-Transfer-Encoding") != "8bit" {
		t.Errorf("attachment header = %v", att.Header)
	}
	ab, _ := io.ReadAll(att)
	if !bytes.Equal(ab, original) {
		t.Errorf("attached original differs:\n%q\n%q", ab, original)
	}
	if _, err := mr.NextPart(); !errors.Is(err, io.EOF) {
		t.Errorf("extra parts: %v", err)
	}
}

func TestNoticeForLargeOriginalAttachesHeaderOnly(t *testing.T) {
	original := []byte("Subject: big\r\nFrom: x@example.com\r\n\r\n" + strings.Repeat("A", noticeAttachLimit+1))
	m, raw := testNotice(t, noticeDelayed, original)
	if len(raw) > 64<<10 {
		t.Errorf("notice is %d bytes; the large original must not be attached", len(raw))
	}
	_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	mr := multipart.NewReader(m.Body, params["boundary"])
	text, _ := mr.NextPart()
	tb, _ := io.ReadAll(text)
	if !strings.Contains(string(tb), "not yet been able") || !strings.Contains(string(tb), "too large to attach") {
		t.Errorf("text = %s", tb)
	}
	hp, _ := mr.NextPart()
	hb, _ := io.ReadAll(hp)
	if hp.Header.Get("Content-Type") != "text/rfc822-headers" || string(hb) != "Subject: big\r\nFrom: x@example.com\r\n\r\n" {
		t.Errorf("header part %v = %q", hp.Header, hb)
	}
}

// TestNoticeNamesTheQualifiedSender: a notice about cron mail names the
// sender as the relay qualified it (envelope.QualifyDomain), read with the
// relay's own header splitter, past an mbox "From " line.
func TestNoticeNamesTheQualifiedSender(t *testing.T) {
	original := []byte("From root Mon Jan  1 00:00:00 2024\r\nFrom: root (Cron Daemon)\r\nSubject: Cron <root@web1> backup\r\n\r\nout\r\n")
	env := testEnv("backup@host.example", "ops@example.com")
	env.QualifyDomain = "host.example"
	env.Size = int64(len(original))
	rec := &Record{Version: 1, Envelope: *env, Dead: &DeadLetter{Reason: "permanent"}}
	raw, err := buildNotice(noticeInput{Kind: noticeFailed, ID: "06h0notice0000000000001", From: "alerts@example.com",
		To: []string{"it@example.com"}, Now: time.Now(), Rec: rec, Kept: "/x"}, bytes.NewReader(original), int64(len(original)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	text, err := multipart.NewReader(m.Body, params["boundary"]).NextPart()
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := io.ReadAll(text)
	for _, want := range []string{"Subject:     Cron <root@web1> backup", "(header From: Cron Daemon <root@host.example>)"} {
		if !strings.Contains(string(tb), want) {
			t.Errorf("text part lacks %q:\n%s", want, tb)
		}
	}
}
