package graph

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/graph/graphtest"
)

var readWrite = []string{"Mail.Send", "Mail.ReadWrite"}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// The client side of graph-api.md §2 against the strict fake: the draft,
// a small attachment, an upload session, the ranges, and /send.
func TestDraftUploadAndSend(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	c := probeClient(fake, readWrite)
	ctx := context.Background()
	const mb = "scans@contoso.com"

	msg := &Message{Subject: "big scan", Body: ItemBody{ContentType: BodyText, Content: "see attached"},
		ToRecipients: []Recipient{{EmailAddress: EmailAddress{Address: "alice@contoso.com"}}}}
	id, rcpt, err := c.CreateDraft(ctx, mb, msg)
	if err != nil || id == "" || rcpt.RequestID == "" {
		t.Fatalf("CreateDraft = %q, %+v, %v", id, rcpt, err)
	}
	small := randomBytes(t, 1000)
	if _, err := c.AddAttachment(ctx, mb, id, &Attachment{ODataType: FileAttachmentType, Name: "small.bin",
		ContentType: "application/octet-stream", ContentBytes: small}); err != nil {
		t.Fatalf("AddAttachment: %v", err)
	}
	big := randomBytes(t, 10<<20+12345)
	s, _, err := c.CreateUploadSession(ctx, mb, id, AttachmentItem{Name: "big.png", Size: int64(len(big)),
		ContentType: "image/png", IsInline: true, ContentID: "big@x"})
	if err != nil {
		t.Fatalf("CreateUploadSession: %v", err)
	}
	if strings.HasPrefix(s.URL, fake.GraphURL()) {
		t.Errorf("upload URL %s is on the Graph host; the fake should put it on its upload host", s.URL)
	}
	chunks, err := c.Upload(ctx, mb, s, bytes.NewReader(big), int64(len(big)))
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if want := (len(big) + UploadChunkBytes - 1) / UploadChunkBytes; chunks != want {
		t.Errorf("chunks = %d, want %d", chunks, want)
	}
	if _, err := c.SendDraft(ctx, mb, id); err != nil {
		t.Fatalf("SendDraft: %v (Graph answers 411 without Content-Length: 0)", err)
	}

	ds := fake.Deliveries()
	if len(ds) != 1 || ds[0].Kind != "draft" || !ds[0].SaveToSentItems {
		t.Fatalf("deliveries = %+v", ds)
	}
	atts := ds[0].Message.Attachments
	if len(atts) != 2 || !bytes.Equal(atts[0].Content, small) || !bytes.Equal(atts[1].Content, big) {
		t.Fatalf("attachments arrived wrong: %d", len(atts))
	}
	if !atts[1].IsInline || atts[1].ContentID != "big@x" || atts[1].ContentType != "image/png" {
		t.Errorf("uploaded attachment = %q %q inline=%v cid=%q", atts[1].Name, atts[1].ContentType, atts[1].IsInline, atts[1].ContentID)
	}
	checkUploads(t, fake.UploadRequests(), int64(len(big)))
}

// checkUploads checks every recorded PUT: no Authorization header, ranges
// in order, each a multiple of 320 KiB (but the last) and at most 4 MiB.
func checkUploads(t *testing.T, ups []graphtest.UploadRequest, total int64) {
	t.Helper()
	var next int64
	for i, u := range ups {
		if u.Authorization {
			t.Errorf("PUT %d carried an Authorization header", i)
		}
		var start, end, tot int64
		fmt.Sscanf(u.ContentRange, "bytes %d-%d/%d", &start, &end, &tot)
		n := end - start + 1
		last := end == total-1
		if start != next || tot != total || int64(u.Bytes) != n || n > 4<<20 || (!last && n%(320<<10) != 0) {
			t.Errorf("PUT %d: range %q, %d bytes, status %d", i, u.ContentRange, u.Bytes, u.Status)
		}
		want := http.StatusOK
		if last {
			want = http.StatusCreated
		}
		if u.Status != want {
			t.Errorf("PUT %d answered %d, want %d", i, u.Status, want)
		}
		next = end + 1
	}
	if next != total {
		t.Errorf("uploaded %d of %d bytes", next, total)
	}
}

// A 403 on the draft means Mail.ReadWrite is missing; the hint says so and
// names the alternative.
func TestDraftWithoutMailReadWrite(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	c := probeClient(fake, []string{"Mail.Send"})
	_, _, err := c.CreateDraft(context.Background(), "scans@contoso.com", &Message{Subject: "x"})
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusForbidden || !e.Permanent() || !e.AccessDenied() {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"Mail.ReadWrite", "delivery.large_messages: reject"} {
		if !strings.Contains(e.Hint(), want) {
			t.Errorf("hint %q lacks %q", e.Hint(), want)
		}
	}
}

func TestDeleteDraft(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	c := probeClient(fake, readWrite)
	ctx := context.Background()
	id, _, err := c.CreateDraft(ctx, "scans@contoso.com", &Message{Subject: "x", Body: ItemBody{ContentType: BodyText, Content: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteDraft(ctx, "scans@contoso.com", id); err != nil {
		t.Fatalf("DeleteDraft: %v", err)
	}
	_, err = c.SendDraft(ctx, "scans@contoso.com", id)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Errorf("sending a deleted draft: %v, want 404", err)
	}
	// A 5xx on a draft step is not ambiguous: only /send delivers.
	fake.FailGraph(graphtest.Fault{Status: http.StatusServiceUnavailable})
	_, err = c.AddAttachment(ctx, "scans@contoso.com", id, &Attachment{ODataType: FileAttachmentType, Name: "a", ContentBytes: []byte("a")})
	if !errors.As(err, &e) || e.Ambiguous || !e.Temporary() {
		t.Errorf("5xx on addAttachment = %+v, want transient and not ambiguous", err)
	}
}

func TestRequestsOverTheLimitAreNotSent(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	c := probeClient(fake, readWrite)
	ctx := context.Background()
	_, _, err := c.CreateDraft(ctx, "scans@contoso.com", &Message{Body: ItemBody{ContentType: BodyText, Content: strings.Repeat("x", MaxRequestBytes)}})
	var e *Error
	if !errors.As(err, &e) || !e.TooLarge() || !strings.Contains(e.Error(), RequestLimitText) {
		t.Errorf("oversized draft: %v", err)
	}
	// Just under 3,000,000 bytes: too large as JSON, too small for a
	// session. The request is refused locally with a reason.
	_, err = c.AddAttachment(ctx, "scans@contoso.com", "AAMk=", &Attachment{ODataType: FileAttachmentType, Name: "gap.bin",
		ContentBytes: make([]byte, MinUploadSessionBytes-1)})
	if !errors.As(err, &e) || !e.TooLarge() || !strings.Contains(e.Hint(), "upload session") {
		t.Errorf("attachment in the gap: %v", err)
	}
	if n := len(fake.GraphRequests()); n != 0 {
		t.Errorf("%d requests reached Graph", n)
	}
}

// uploadStub is an upload service that answers each PUT with the next
// scripted response, to exercise what the fake never does.
func uploadStub(t *testing.T, answers ...func(w http.ResponseWriter, r *http.Request)) (*Client, UploadSession) {
	t.Helper()
	i := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") != "" {
			t.Errorf("Authorization header sent to the upload URL")
		}
		if i >= len(answers) {
			t.Errorf("unexpected PUT %s", r.Header.Get("Content-Range"))
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		answers[i](w, r)
		i++
	}))
	t.Cleanup(srv.Close)
	c := NewClient("https://graph.invalid", srv.Client(), nil, slog.New(slog.DiscardHandler))
	return c, UploadSession{URL: srv.URL + "/api/v2.0/AttachmentSessions('x')?authtoken=t"}
}

func answer(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestUploadResponses(t *testing.T) {
	size := int64(UploadChunkBytes + 100)
	data := make([]byte, size)
	tests := []struct {
		name    string
		answers []func(http.ResponseWriter, *http.Request)
		errText string
	}{
		// The Outlook layer writes ExpirationDateTime in Pascal case beside
		// nextExpectedRanges; the members are matched without case.
		{"mixed case", []func(http.ResponseWriter, *http.Request){
			answer(200, fmt.Sprintf(`{"ExpirationDateTime":"2030-01-01T00:00:00.0000000Z","NextExpectedRanges":["%d"]}`, UploadChunkBytes)),
			answer(201, "")}, ""},
		{"open range", []func(http.ResponseWriter, *http.Request){
			answer(200, fmt.Sprintf(`{"nextExpectedRanges":["%d-"]}`, UploadChunkBytes)),
			answer(201, "")}, ""},
		{"out of step", []func(http.ResponseWriter, *http.Request){
			answer(200, `{"nextExpectedRanges":["0-"]}`)}, "expects byte 0 next"},
		{"early completion", []func(http.ResponseWriter, *http.Request){
			answer(201, "")}, "completed before its last range"},
		{"last not created", []func(http.ResponseWriter, *http.Request){
			answer(200, fmt.Sprintf(`{"nextExpectedRanges":["%d"]}`, UploadChunkBytes)),
			answer(200, `{}`)}, "not 201 Created"},
		{"expired session", []func(http.ResponseWriter, *http.Request){
			answer(401, `{"error":{"code":"InvalidAuthenticationToken","message":"The authtoken of the upload URL is missing or invalid."}}`)},
			"InvalidAuthenticationToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := uploadStub(t, tt.answers...)
			_, err := c.Upload(context.Background(), "scans@contoso.com", s, bytes.NewReader(data), size)
			if tt.errText == "" {
				if err != nil {
					t.Fatalf("Upload: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), tt.errText) || e.Op != "upload" || e.Ambiguous {
				t.Fatalf("err = %v, want an upload error naming %q", err, tt.errText)
			}
			if tt.name == "expired session" && (!e.Temporary() || !strings.Contains(e.Hint(), "upload URL")) {
				t.Errorf("expired session: class %v hint %q", e.Class, e.Hint())
			}
		})
	}
}

func TestUploadShortReader(t *testing.T) {
	c, s := uploadStub(t)
	_, err := c.Upload(context.Background(), "scans@contoso.com", s, bytes.NewReader(make([]byte, 10)), 20)
	if err == nil || !strings.Contains(err.Error(), "read attachment") {
		t.Fatalf("err = %v", err)
	}
}

func TestChunkSize(t *testing.T) {
	if UploadChunkBytes != 3_932_160 || UploadChunkBytes%(320<<10) != 0 || UploadChunkBytes > 4<<20 {
		t.Fatalf("UploadChunkBytes = %d", UploadChunkBytes)
	}
}

// A transport failure names the upload URL, whose query is a credential;
// the error keeps the host and path but not the token.
func TestUploadErrorHidesAuthtoken(t *testing.T) {
	c, s := uploadStub(t)
	dead := httptest.NewTLSServer(http.NotFoundHandler())
	dead.Close()
	s.URL = dead.URL + "/api/v2.0/AttachmentSessions('x')?authtoken=SECRET-TOKEN"
	_, err := c.Upload(context.Background(), "scans@contoso.com", s, bytes.NewReader([]byte("abc")), 3)
	var e *Error
	if !errors.As(err, &e) || !e.Temporary() {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "SECRET-TOKEN") || !strings.Contains(err.Error(), "AttachmentSessions") {
		t.Errorf("error text %q", err.Error())
	}
}
