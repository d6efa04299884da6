package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/testlog"
)

const (
	kb = 1000
	mb = 1000 * kb
)

// The large-message path against the strict fake, with attachment content
// deferred to the spool (the default) and decoded in memory: both must
// deliver exactly what the sender attached, in order, through the
// documented requests.
func TestLargeMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		parts []part
		// requests is the expected Graph request sequence.
		requests []string
	}{
		{"3.5 MB attachment", []part{{name: "scan.pdf", ctype: "application/pdf", size: 3500 * kb}},
			[]string{"POST /messages 201", "POST /messages/{id}/attachments/createUploadSession 201", "POST /messages/{id}/send 202"}},
		{"10 MB attachment", []part{{name: "scan.pdf", ctype: "application/pdf", size: 10 * mb}},
			[]string{"POST /messages 201", "POST /messages/{id}/attachments/createUploadSession 201", "POST /messages/{id}/send 202"}},
		// Small ones first ride in the draft; after the first large one,
		// small ones are posted one by one so the order is kept.
		{"several large and small", []part{
			{name: "a-small.txt", ctype: "text/plain", size: 100 * kb},
			{name: "b-large.pdf", ctype: "application/pdf", size: 4 * mb},
			{name: "c-small.png", ctype: "image/png", size: 2500 * kb},
			{name: "d-large.zip", ctype: "application/zip", size: 5 * mb},
			{name: "e-exactly-3MB.bin", ctype: "application/octet-stream", size: graph.MinUploadSessionBytes},
		}, []string{"POST /messages 201",
			"POST /messages/{id}/attachments/createUploadSession 201",
			"POST /messages/{id}/attachments 201",
			"POST /messages/{id}/attachments/createUploadSession 201",
			"POST /messages/{id}/attachments/createUploadSession 201",
			"POST /messages/{id}/send 202"}},
		// Three attachments under 3 MB whose sum is over the limit: the
		// draft carries what fits, the rest is posted.
		{"small ones over the limit", []part{
			{name: "1.bin", ctype: "application/octet-stream", size: 1400 * kb},
			{name: "2.bin", ctype: "application/octet-stream", size: 1400 * kb},
			{name: "3.bin", ctype: "application/octet-stream", size: 1400 * kb},
		}, []string{"POST /messages 201", "POST /messages/{id}/attachments 201", "POST /messages/{id}/send 202"}},
		{"inline large image", []part{{name: "photo.jpg", ctype: "image/jpeg", size: 6 * mb, cid: "photo@mfp"}},
			[]string{"POST /messages 201", "POST /messages/{id}/attachments/createUploadSession 201", "POST /messages/{id}/send 202"}},
	}
	for _, mode := range []struct {
		name      string
		deferFrom int64
	}{{"deferred", 0}, {"in memory", -1}} {
		for i, tt := range tests {
			t.Run(mode.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				fake := graphtest.New(t, graphtest.Config{Roles: readWrite})
				r, logs := newRelay(t, fake, readWrite, Options{DeferAttachmentBytes: mode.deferFrom})
				parts := append([]part{}, tt.parts...)
				raw := buildMessage(uint64(i+1), "Large "+tt.name, parts)
				env := testEnvelope(envelope.FormatJSON, "alice@company.com", "archive@company.com")
				env.FromName = "MFP 2nd floor"

				if err := r.Admit(env, bytes.NewReader(raw), int64(len(raw))); err != nil {
					t.Fatalf("Admit in upload mode: %v", err)
				}
				rcpt, err := r.Send(context.Background(), env, bytes.NewReader(raw), int64(len(raw)))
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				ds := fake.Deliveries()
				if len(ds) != 1 || ds[0].Kind != "draft" || ds[0].RequestID != rcpt.RequestID {
					t.Fatalf("deliveries = %+v; want one draft delivery with the /send request id %s", ds, rcpt.RequestID)
				}
				checkLargeDelivery(t, ds[0], tt.name, parts)
				if got := requestLines(fake); !reflect.DeepEqual(got, tt.requests) {
					t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.requests, "\n"))
				}
				checkUploadRequests(t, fake.UploadRequests())
				for _, want := range []string{"path=draft", "draft_request_id=", "send_request_id=" + rcpt.RequestID, "large message: draft created"} {
					if !strings.Contains(logs.String(), want) {
						t.Errorf("log lacks %q", want)
					}
				}
			})
		}
	}
}

func checkLargeDelivery(t *testing.T, d graphtest.Delivery, name string, parts []part) {
	t.Helper()
	m := d.Message
	if m.Subject != "Large "+name || !strings.Contains(m.Body, "Scan attached.") || m.BodyType != "html" {
		t.Errorf("subject %q body (%s) %q", m.Subject, m.BodyType, m.Body)
	}
	if m.From == nil || m.From.Address != "scans@company.com" || m.From.Name != "MFP 2nd floor" {
		t.Errorf("from = %+v", m.From)
	}
	if len(m.To) != 1 || m.To[0].Address != "alice@company.com" || len(m.Bcc) != 1 || m.Bcc[0].Address != "archive@company.com" {
		t.Errorf("to %+v bcc %+v", m.To, m.Bcc)
	}
	if !d.SaveToSentItems {
		t.Error("a draft is always saved to Sent Items")
	}
	if len(m.Attachments) != len(parts) {
		t.Fatalf("%d attachments, want %d", len(m.Attachments), len(parts))
	}
	for i, p := range parts {
		a := m.Attachments[i]
		if a.Name != p.name || a.ContentType != p.ctype || sum(a.Content) != sum(p.data) || len(a.Content) != len(p.data) {
			t.Errorf("attachment %d = %q %q %d bytes %s; want %q %q %d bytes %s",
				i, a.Name, a.ContentType, len(a.Content), sum(a.Content), p.name, p.ctype, len(p.data), sum(p.data))
		}
		if a.IsInline != (p.cid != "") || a.ContentID != p.cid {
			t.Errorf("attachment %d inline=%v cid=%q; want cid %q", i, a.IsInline, a.ContentID, p.cid)
		}
	}
}

// checkUploadRequests: no Authorization header on the upload host, and
// every range but a session's last a multiple of 320 KiB, at most 4 MiB.
func checkUploadRequests(t *testing.T, ups []graphtest.UploadRequest) {
	t.Helper()
	for i, u := range ups {
		var start, end, total int64
		fmt.Sscanf(u.ContentRange, "bytes %d-%d/%d", &start, &end, &total)
		n := end - start + 1
		if u.Authorization || u.Method != http.MethodPut || n > 4<<20 || (end != total-1 && n%(320<<10) != 0) || int64(u.Bytes) != n {
			t.Errorf("upload %d: %s %q %d bytes auth=%v status %d", i, u.Method, u.ContentRange, u.Bytes, u.Authorization, u.Status)
		}
	}
}

// failingReaderAt lets the first budget bytes be read (the conversion's
// pass over the spool file) and fails afterwards, in the middle of the
// upload, as a disk error would.
type failingReaderAt struct {
	r      io.ReaderAt
	budget int64
}

func (f *failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if f.budget -= int64(len(p)); f.budget < 0 {
		return 0, errors.New("simulated disk error")
	}
	return f.r.ReadAt(p, off)
}

// Every failure after the draft exists deletes the draft.
func TestLargeFailuresDeleteTheDraft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	parts := []part{{name: "a.pdf", ctype: "application/pdf", size: 4 * mb}, {name: "b.pdf", ctype: "application/pdf", size: 4 * mb}}
	raw := buildMessage(7, "fails", parts)
	size := int64(len(raw))

	t.Run("mid-upload", func(t *testing.T) {
		fake := graphtest.New(t, graphtest.Config{Roles: readWrite})
		r, _ := newRelay(t, fake, readWrite, Options{})
		src := &failingReaderAt{r: bytes.NewReader(raw), budget: size + 6*mb}
		_, err := r.Send(ctx, testEnvelope(envelope.FormatJSON, "alice@company.com"), src, size)
		if err == nil || !strings.Contains(err.Error(), "simulated disk error") {
			t.Fatalf("err = %v", err)
		}
		checkDeleted(t, fake)
		if ups := fake.UploadRequests(); len(ups) == 0 {
			t.Error("the failure came before any upload; the test wants it in the middle")
		}
	})
	t.Run("upload session refused", func(t *testing.T) {
		fake := graphtest.New(t, graphtest.Config{Roles: readWrite})
		r, _ := newRelay(t, fake, readWrite, Options{})
		// The draft and the first session succeed; the second fails.
		fake.FailGraph(graphtest.Fault{})
		fake.FailGraph(graphtest.Fault{})
		fake.FailGraph(graphtest.Fault{Status: http.StatusServiceUnavailable})
		_, err := r.Send(ctx, testEnvelope(envelope.FormatJSON, "alice@company.com"), bytes.NewReader(raw), size)
		var e *graph.Error
		if !errors.As(err, &e) || e.Op != "uploadSession" || !e.Temporary() || e.Ambiguous {
			t.Fatalf("err = %v", err)
		}
		checkDeleted(t, fake)
	})
	t.Run("send fails", func(t *testing.T) {
		fake := graphtest.New(t, graphtest.Config{Roles: readWrite})
		r, _ := newRelay(t, fake, readWrite, Options{})
		for range 3 {
			fake.FailGraph(graphtest.Fault{})
		}
		fake.FailGraph(graphtest.Fault{Status: http.StatusServiceUnavailable})
		_, err := r.Send(ctx, testEnvelope(envelope.FormatJSON, "alice@company.com"), bytes.NewReader(raw), size)
		var e *graph.Error
		if !errors.As(err, &e) || e.Op != "send" || !e.Ambiguous {
			t.Fatalf("err = %v; a 5xx on /send may have sent the message", err)
		}
		checkDeleted(t, fake)
	})
}

func checkDeleted(t *testing.T, fake *graphtest.Server) {
	t.Helper()
	lines := requestLines(fake)
	if len(fake.Deliveries()) != 0 {
		t.Error("a message was delivered")
	}
	if len(lines) == 0 || lines[len(lines)-1] != "DELETE /messages/{id} 204" {
		t.Errorf("requests:\n%s\nwant a final DELETE of the draft", strings.Join(lines, "\n"))
	}
}

// Without Mail.ReadWrite the draft is refused with 403; the error says
// what to grant, and what to configure instead.
func TestLargeWithoutMailReadWrite(t *testing.T) {
	t.Parallel()
	fake := graphtest.New(t, graphtest.Config{})
	r, logs := newRelay(t, fake, []string{"Mail.Send"}, Options{})
	raw := buildMessage(3, "no rw", []part{{name: "a.pdf", ctype: "application/pdf", size: 4 * mb}})
	_, err := r.Send(context.Background(), testEnvelope(envelope.FormatJSON, "alice@company.com"), bytes.NewReader(raw), int64(len(raw)))
	var e *graph.Error
	if !errors.As(err, &e) || e.Op != "createMessage" || !e.AccessDenied() || !e.Permanent() {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"Mail.ReadWrite", "delivery.large_messages: reject"} {
		if !strings.Contains(e.Hint(), want) || !strings.Contains(logs.String(), want) {
			t.Errorf("hint or log lacks %q: %q", want, e.Hint())
		}
	}
	if lines := requestLines(fake); len(lines) != 1 {
		t.Errorf("requests = %v; nothing to delete when the draft was refused", lines)
	}
}

// delivery.large_messages: reject refuses what needs the large path, at
// Admit and at Send, naming the limit; smaller mail still goes.
func TestRejectMode(t *testing.T) {
	t.Parallel()
	fake := graphtest.New(t, graphtest.Config{Roles: readWrite})
	r, logs := newRelay(t, fake, readWrite, Options{LargeMessages: config.LargeReject})
	ctx := context.Background()
	large := buildMessage(11, "too big", []part{{name: "a.pdf", ctype: "application/pdf", size: 3500 * kb}})
	env := testEnvelope(envelope.FormatJSON, "alice@company.com")

	for name, err := range map[string]error{
		"Admit": r.Admit(env, bytes.NewReader(large), int64(len(large))),
		"Send":  func() error { _, err := r.Send(ctx, env, bytes.NewReader(large), int64(len(large))); return err }(),
	} {
		var e *graph.Error
		if !errors.As(err, &e) || !e.TooLarge() || !e.Permanent() {
			t.Fatalf("%s: err = %v, want TooLarge", name, err)
		}
		if !strings.Contains(err.Error(), "4,000,000-byte Graph request limit") || !strings.Contains(e.Hint(), "4,000,000-byte Graph request limit") {
			t.Errorf("%s: the error (%v) and hint (%q) must name the limit", name, err, e.Hint())
		}
	}
	if !strings.Contains(logs.String(), "4,000,000-byte Graph request limit") {
		t.Error("the log does not name the limit")
	}
	if n := len(fake.GraphRequests()); n != 0 {
		t.Errorf("%d Graph requests for a refused message", n)
	}

	small := buildMessage(12, "fits", []part{{name: "a.pdf", ctype: "application/pdf", size: 2 * mb}})
	if err := r.Admit(env, bytes.NewReader(small), int64(len(small))); err != nil {
		t.Fatalf("Admit small: %v", err)
	}
	if _, err := r.Send(ctx, env, bytes.NewReader(small), int64(len(small))); err != nil {
		t.Fatalf("Send small: %v", err)
	}
	if ds := fake.Deliveries(); len(ds) != 1 || ds[0].Kind != "json" {
		t.Errorf("deliveries = %+v", ds)
	}
}

// untouchable fails the test if the message is read beyond its first
// bytes: Admit must decide small messages from their size and from the
// first byte that is not white space (the emptiness check).
type untouchable struct{ t *testing.T }

func (u untouchable) ReadAt(p []byte, off int64) (int, error) {
	if off > 0 {
		u.t.Error("Admit read a small message beyond its first chunk")
		return 0, io.EOF
	}
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// An empty or white-space-only message is refused before 250 in every
// format and mode, as content no format can carry (554 5.6.0), and a
// message with one visible byte is not.
func TestAdmitEmpty(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	for _, mode := range []string{config.LargeReject, config.LargeUpload} {
		r, _ := newRelay(t, fake, readWrite, Options{LargeMessages: mode})
		for _, format := range []string{envelope.FormatJSON, envelope.FormatMIME} {
			for _, raw := range []string{"", "\r\n", "\r\n \t\r\n\r\n"} {
				err := r.Admit(testEnvelope(format, "alice@company.com"), strings.NewReader(raw), int64(len(raw)))
				var ic interface{ InvalidContent() bool }
				if !errors.As(err, &ic) || !ic.InvalidContent() {
					t.Errorf("%s %s %q: %v, want an InvalidContent refusal", mode, format, raw, err)
				}
			}
			big := strings.Repeat("\r\n", 40<<10) + "x"
			if err := r.Admit(testEnvelope(format, "alice@company.com"), strings.NewReader(big), int64(len(big))); err != nil {
				t.Errorf("%s %s: a message with content after 80 KB of blank lines was refused: %v", mode, format, err)
			}
		}
	}
}

func TestAdmitSmallMessagesCheaply(t *testing.T) {
	t.Parallel()
	fake := graphtest.New(t, graphtest.Config{})
	for _, mode := range []string{config.LargeReject, config.LargeUpload} {
		r, _ := newRelay(t, fake, readWrite, Options{LargeMessages: mode})
		for _, format := range []string{envelope.FormatJSON, envelope.FormatMIME} {
			if err := r.Admit(testEnvelope(format, "alice@company.com"), untouchable{t}, 500*kb); err != nil {
				t.Errorf("%s %s: %v", mode, format, err)
			}
		}
		// In upload mode a JSON message of any size is admitted unread.
		if mode == config.LargeUpload {
			if err := r.Admit(testEnvelope(envelope.FormatJSON, "alice@company.com"), untouchable{t}, 30*mb); err != nil {
				t.Errorf("upload mode, 30 MB: %v", err)
			}
		}
	}
}

// Just below the limit goes as one sendMail; the size computed without
// building the request is exact, so the boundary is where Graph puts it.
func TestRequestBytesExact(t *testing.T) {
	t.Parallel()
	fake := graphtest.New(t, graphtest.Config{})
	r, _ := newRelay(t, fake, readWrite, Options{})
	raw := buildMessage(5, "exact", []part{
		{name: "a.bin", ctype: "application/octet-stream", size: 2 * mb},
		{name: "b.bin", ctype: "application/octet-stream", size: 300 * kb},
	})
	env := testEnvelope(envelope.FormatJSON, "alice@company.com")
	c, err := r.convertMessage(env, bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.deferred {
		c.Message.Attachments[i].ContentBytes, _ = c.content(i)
	}
	full, err := jsonLen(&graph.SendMailRequest{Message: c.Message})
	if err != nil || full != c.need {
		t.Fatalf("computed %d bytes, marshalled %d (%v)", c.need, full, err)
	}
}

// A small message without deferred attachments is encoded once: the
// request whose size decides the path is the one sent, byte for byte what
// graph.Client.SendMail would have encoded, and Graph receives it whole.
// A message with a deferred attachment is still sized without encoding
// its contents.
func TestSmallRequestEncodedOnce(t *testing.T) {
	t.Parallel()
	fake := graphtest.New(t, graphtest.Config{})
	for _, save := range []bool{true, false} {
		logs := testlog.New(t, "relay log")
		newTokens := func() oauth2.TokenSource {
			return oauth2.StaticTokenSource(&oauth2.Token{
				AccessToken: fake.MintAccessToken(readWrite, time.Hour), TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)})
		}
		r := New(graph.NewClient(fake.GraphURL(), fake.HTTPClient(), newTokens, logs.Logger()), save, logs.Logger(), Options{})
		raw := buildMessage(7, "encoded once", []part{{name: "small.bin", ctype: "application/octet-stream", size: 3 * kb}})
		env := testEnvelope(envelope.FormatJSON, "alice@company.com")
		c, err := r.convertMessage(env, bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(&graph.SendMailRequest{Message: c.Message, SaveToSentItems: r.saveOption()})
		if err != nil {
			t.Fatal(err)
		}
		if c.body == nil || !bytes.Equal(c.body, want) || c.need != int64(len(want)) {
			t.Fatalf("save=%v: encoded %d bytes (need %d), SendMail would send %d", save, len(c.body), c.need, len(want))
		}
		if _, err := r.Send(context.Background(), env, bytes.NewReader(raw), int64(len(raw))); err != nil {
			t.Fatalf("Send: %v", err)
		}
		ds := fake.Deliveries()
		d := ds[len(ds)-1]
		if d.Kind != "json" || d.Message.Subject != "encoded once" || len(d.Message.Attachments) != 1 || d.SaveToSentItems != save {
			t.Errorf("save=%v: Graph received %+v", save, d)
		}
	}
	r, _ := newRelay(t, fake, readWrite, Options{DeferAttachmentBytes: 1 * kb})
	raw := buildMessage(8, "deferred", []part{{name: "small.bin", ctype: "application/octet-stream", size: 3 * kb}})
	c, err := r.convertMessage(testEnvelope(envelope.FormatJSON, "alice@company.com"), bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.deferred) != 1 || c.body != nil {
		t.Errorf("a message with a deferred attachment: %d deferred, %d bytes encoded whole; want 1 and none", len(c.deferred), len(c.body))
	}
}
