package graphtest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// putRange PUTs data[start:end] to an upload URL with the headers the
// documentation requires, plus any extra header pairs.
func putRange(t *testing.T, client *http.Client, uploadURL string, data []byte, start, end, total int, extra ...string) graphReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, uploadURL, bytes.NewReader(data[start:end]))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, total))
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			req.Header.Del(extra[i])
		} else {
			req.Header.Set(extra[i], extra[i+1])
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return graphReply{status: resp.StatusCode, header: resp.Header, body: body.Bytes()}
}

func createSession(t *testing.T, client *http.Client, base, tok, messageID, item string) graphReply {
	t.Helper()
	return graphDo(t, client, http.MethodPost, base+"/messages/"+messageID+"/attachments/createUploadSession", tok,
		"application/json", []byte(`{"AttachmentItem":`+item+`}`))
}

func TestLargeAttachmentFlow(t *testing.T) {
	s := New(t, Config{})
	client := s.HTTPClient()
	tok := s.MintAccessToken([]string{"Mail.Send", "Mail.ReadWrite"}, time.Hour)
	base := s.GraphURL() + "/v1.0/users/relay@contoso.com"
	logo := []byte("tiny-inline-logo")
	draftBody := fmt.Sprintf(`{"subject":"big files","body":{"contentType":"html","content":"<img src=\"cid:logo\">"},
"toRecipients":[{"emailAddress":{"address":"alice@contoso.com"}}],
"internetMessageHeaders":[{"name":"X-Relayed-By","value":"graphrelay"}],
"attachments":[{"@odata.type":"#microsoft.graph.fileAttachment","name":"logo.png","contentType":"image/png","isInline":true,"contentId":"logo","contentBytes":%q}]}`,
		base64.StdEncoding.EncodeToString(logo))

	g := graphDo(t, client, http.MethodPost, base+"/messages", s.MintAccessToken([]string{"Mail.Send"}, time.Hour), "application/json", []byte(draftBody))
	if code, _ := g.errorCode(t); g.status != 403 || code != "ErrorAccessDenied" {
		t.Errorf("draft without Mail.ReadWrite: %d %s", g.status, g.body)
	}

	g = graphDo(t, client, http.MethodPost, base+"/messages", tok, "application/json", []byte(draftBody))
	if g.status != 201 {
		t.Fatalf("create draft: %d %s", g.status, g.body)
	}
	draft := g.json(t)
	id, _ := draft["id"].(string)
	if id == "" || draft["isDraft"] != true || draft["subject"] != "big files" || g.header.Get("Location") == "" {
		t.Fatalf("draft = %v", draft)
	}
	msgBase := base + "/messages/" + id

	small := []byte("small attachment")
	g = graphDo(t, client, http.MethodPost, msgBase+"/attachments", tok, "application/json",
		[]byte(`{"@odata.type":"#microsoft.graph.fileAttachment","name":"small.txt","contentType":"text/plain","contentBytes":"`+base64.StdEncoding.EncodeToString(small)+`"}`))
	if g.status != 201 || g.json(t)["size"] != float64(len(small)) || g.json(t)["id"] == "" {
		t.Fatalf("add attachment: %d %s", g.status, g.body)
	}
	big := base64.StdEncoding.EncodeToString(randomBytes(t, 3_100_000))
	g = graphDo(t, client, http.MethodPost, msgBase+"/attachments", tok, "application/json",
		[]byte(`{"@odata.type":"#microsoft.graph.fileAttachment","name":"big.bin","contentBytes":"`+big+`"}`))
	if g.status != 413 {
		t.Errorf("3.1 MB through POST attachments: %d", g.status)
	}

	for _, tc := range []struct {
		item string
		code string
	}{
		{`{"attachmentType":"file","name":"s.bin","size":1000000}`, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"},
		{`{"attachmentType":"file","name":"h.bin","size":200000000}`, "ErrorMessageSizeExceeded"},
		{`{"attachmentType":"file","name":"x.bin","size":"4000000"}`, "RequestBodyRead"},
		{`{"name":"x.bin","size":4000000}`, "ErrorInvalidRequest"},
	} {
		g := createSession(t, client, base, tok, id, tc.item)
		if code, _ := g.errorCode(t); g.status != 400 || code != tc.code {
			t.Errorf("session %s: %d %s", tc.item, g.status, g.body)
		}
	}

	// 3.5 MB in two ranges.
	data35 := randomBytes(t, 3_500_000)
	g = createSession(t, client, base, tok, id, `{"attachmentType":"file","name":"report.pdf","size":3500000,"contentType":"application/pdf"}`)
	if g.status != 201 {
		t.Fatalf("create session: %d %s", g.status, g.body)
	}
	sess := g.json(t)
	uploadURL, _ := sess["uploadUrl"].(string)
	u, err := url.Parse(uploadURL)
	if err != nil || u.Query().Get("authtoken") == "" || "https://"+u.Host != s.UploadURL() || s.UploadURL() == s.GraphURL() {
		t.Fatalf("uploadUrl %q (upload host %s, graph %s)", uploadURL, s.UploadURL(), s.GraphURL())
	}
	if r, _ := sess["nextExpectedRanges"].([]any); len(r) != 1 || r[0] != "0-" || sess["expirationDateTime"] == "" {
		t.Errorf("session = %v", sess)
	}

	if g := putRange(t, client, uploadURL, data35, 0, 2_000_000, 3_500_000, "Authorization", "Bearer "+tok); g.status != 401 {
		t.Errorf("PUT with Authorization: %d", g.status)
	}
	if g := putRange(t, client, uploadURL, data35, 2_000_000, 3_500_000, 3_500_000); g.status != 416 {
		t.Errorf("out of order: %d %s", g.status, g.body)
	}
	if g := putRange(t, client, uploadURL, data35, 0, 2_000_000, 3_500_000, "Content-Range", ""); g.status != 416 {
		t.Errorf("no Content-Range: %d", g.status)
	}
	if g := putRange(t, client, uploadURL, data35, 0, 2_000_000, 3_600_000); g.status != 416 {
		t.Errorf("wrong total: %d", g.status)
	}
	g = putRange(t, client, uploadURL, data35, 0, 2_000_000, 3_500_000)
	if g.status != 200 {
		t.Fatalf("first range: %d %s", g.status, g.body)
	}
	mid := g.json(t)
	if r, _ := mid["nextExpectedRanges"].([]any); len(r) != 1 || r[0] != "2000000" || mid["ExpirationDateTime"] == nil || mid["@odata.context"] == nil {
		t.Errorf("intermediate body = %v", mid)
	}
	if g := putRange(t, client, uploadURL, data35, 0, 2_000_000, 3_500_000); g.status != 416 {
		t.Errorf("repeated range: %d", g.status)
	}
	g = putRange(t, client, uploadURL, data35, 2_000_000, 3_500_000, 3_500_000)
	if g.status != 201 || len(g.body) != 0 || !strings.Contains(g.header.Get("Location"), "/Attachments('") {
		t.Fatalf("last range: %d %q Location %q", g.status, g.body, g.header.Get("Location"))
	}
	if g := putRange(t, client, uploadURL, data35, 0, 100, 3_500_000); g.status != 404 {
		t.Errorf("PUT after completion: %d", g.status)
	}

	// 10 MB inline, in 4 MiB ranges.
	data10 := randomBytes(t, 10_000_000)
	g = createSession(t, client, base, tok, id, `{"attachmentType":"file","name":"photo.jpg","size":10000000,"contentType":"image/jpeg","isInline":true,"contentId":"photo"}`)
	if g.status != 201 {
		t.Fatalf("create 10 MB session: %d %s", g.status, g.body)
	}
	uploadURL10 := g.json(t)["uploadUrl"].(string)
	if g := putRange(t, client, uploadURL10, data10, 0, maxUploadChunkBytes+1, len(data10)); g.status != 413 {
		t.Errorf("chunk over 4 MiB: %d", g.status)
	}
	var statuses []int
	for start := 0; start < len(data10); start += maxUploadChunkBytes {
		end := min(start+maxUploadChunkBytes, len(data10))
		statuses = append(statuses, putRange(t, client, uploadURL10, data10, start, end, len(data10)).status)
	}
	if fmt.Sprint(statuses) != "[200 200 201]" {
		t.Errorf("10 MB statuses %v", statuses)
	}

	// A cancelled session leaves nothing behind.
	g = createSession(t, client, base, tok, id, `{"attachmentType":"file","name":"cancel.bin","size":4000000}`)
	cancelURL := g.json(t)["uploadUrl"].(string)
	req, _ := http.NewRequest(http.MethodDelete, cancelURL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Errorf("DELETE upload URL: %d", resp.StatusCode)
	}
	if g := putRange(t, client, cancelURL, data35, 0, 100, 4_000_000); g.status != 404 {
		t.Errorf("PUT after cancel: %d", g.status)
	}

	// /send without Content-Length is 411; a Go client always sends it, so
	// write the request by hand.
	if st := rawSendWithoutLength(t, s, strings.TrimPrefix(msgBase, s.GraphURL()), tok); st != http.StatusLengthRequired {
		t.Errorf("send without Content-Length: %d", st)
	}
	if n := len(s.Deliveries()); n != 0 {
		t.Fatalf("%d deliveries before /send", n)
	}

	g = graphDo(t, client, http.MethodPost, msgBase+"/send", tok, "", nil, "client-request-id", "5e4d0000-0000-4000-8000-000000000001")
	if g.status != 202 || len(g.body) != 0 {
		t.Fatalf("send: %d %s", g.status, g.body)
	}
	ds := s.Deliveries()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries", len(ds))
	}
	d := ds[0]
	if d.Kind != "draft" || d.DraftID != id || !d.SaveToSentItems || d.ClientRequestID != "5e4d0000-0000-4000-8000-000000000001" ||
		d.Message.Subject != "big files" || len(d.Message.Headers) != 1 || len(d.Message.To) != 1 {
		t.Errorf("delivery %+v", d)
	}
	atts := d.Message.Attachments
	if len(atts) != 4 {
		t.Fatalf("%d attachments", len(atts))
	}
	if atts[0].Name != "logo.png" || !bytes.Equal(atts[0].Content, logo) || !atts[0].IsInline ||
		atts[1].Name != "small.txt" || !bytes.Equal(atts[1].Content, small) ||
		atts[2].Name != "report.pdf" || atts[2].ContentType != "application/pdf" || !bytes.Equal(atts[2].Content, data35) ||
		atts[3].Name != "photo.jpg" || !atts[3].IsInline || atts[3].ContentID != "photo" || !bytes.Equal(atts[3].Content, data10) {
		t.Errorf("attachments: %s %s %s %s", atts[0].Name, atts[1].Name, atts[2].Name, atts[3].Name)
	}

	g = graphDo(t, client, http.MethodPost, msgBase+"/send", tok, "", nil)
	if code, _ := g.errorCode(t); g.status != 404 || code != "ErrorItemNotFound" {
		t.Errorf("second send: %d %s", g.status, g.body)
	}

	// Upload PUTs are not Graph API requests and carry no faults.
	for _, gr := range s.GraphRequests() {
		if gr.Method == http.MethodPut {
			t.Errorf("upload recorded as a Graph request: %+v", gr)
		}
	}
	var sawAuth bool
	for _, ur := range s.UploadRequests() {
		sawAuth = sawAuth || (ur.Authorization && ur.Status == 401)
	}
	if !sawAuth {
		t.Error("the rejected Authorization PUT was not recorded")
	}
}

func rawSendWithoutLength(t *testing.T, s *Server, path, tok string) int {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM())
	host := strings.TrimPrefix(s.GraphURL(), "https://")
	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s/send HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", path, host, tok)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestDraftLifecycle(t *testing.T) {
	s := New(t, Config{SendAs: map[string][]string{}})
	client := s.HTTPClient()
	tok := s.MintAccessToken([]string{"Mail.Send", "Mail.ReadWrite"}, time.Hour)
	base := s.GraphURL() + "/v1.0/users/relay@contoso.com"

	g := graphDo(t, client, http.MethodPost, base+"/messages", tok, "application/json",
		[]byte(`{"subject":"x","from":{"emailAddress":{"address":"ceo@contoso.com"}},"toRecipients":[{"emailAddress":{"address":"a@contoso.com"}}]}`))
	if g.status != 201 {
		t.Fatalf("create: %d %s", g.status, g.body)
	}
	id := g.json(t)["id"].(string)
	// Send As is checked when the draft is submitted.
	g = graphDo(t, client, http.MethodPost, base+"/messages/"+id+"/send", tok, "", nil)
	if code, _ := g.errorCode(t); g.status != 403 || code != "ErrorSendAsDenied" {
		t.Errorf("send as: %d %s", g.status, g.body)
	}
	// The draft is scoped to its mailbox.
	g = graphDo(t, client, http.MethodDelete, s.GraphURL()+"/v1.0/users/other@contoso.com/messages/"+id, tok, "", nil)
	if g.status != 404 {
		t.Errorf("delete from another mailbox: %d", g.status)
	}
	g = graphDo(t, client, http.MethodDelete, base+"/messages/"+id, tok, "", nil)
	if g.status != 204 {
		t.Errorf("delete: %d %s", g.status, g.body)
	}
	g = graphDo(t, client, http.MethodDelete, base+"/messages/"+id, tok, "", nil)
	if g.status != 404 {
		t.Errorf("delete twice: %d", g.status)
	}
	g = graphDo(t, client, http.MethodPost, base+"/messages", tok, "application/json", []byte(`{"subject":"x","bogus":true}`))
	if code, _ := g.errorCode(t); g.status != 400 || code != "RequestBodyRead" {
		t.Errorf("draft validation: %d %s", g.status, g.body)
	}
	// A MIME draft.
	g = graphDo(t, client, http.MethodPost, base+"/messages", tok, "text/plain", wrap76([]byte(testMIME)))
	if g.status != 201 {
		t.Fatalf("MIME draft: %d %s", g.status, g.body)
	}
	mimeID := g.json(t)["id"].(string)
	if g := graphDo(t, client, http.MethodPost, base+"/messages/"+mimeID+"/send", tok, "", nil); g.status != 202 {
		t.Errorf("send MIME draft: %d %s", g.status, g.body)
	}
	if d := s.Deliveries(); len(d) != 1 || d[0].Kind != "draft" || len(d[0].Message.Attachments) != 1 || len(d[0].Message.Bcc) != 1 {
		t.Errorf("deliveries %+v", d)
	}
}

func TestUploadOnCloudHosts(t *testing.T) {
	s := New(t, Config{})
	client := s.CloudHTTPClient()
	tok := s.MintAccessTokenFor("https://graph.microsoft.us", []string{"Mail.Send", "Mail.ReadWrite"}, time.Hour)
	base := "https://graph.microsoft.us/v1.0/users/relay@contoso.com"
	g := graphDo(t, client, http.MethodPost, base+"/messages", tok, "application/json",
		[]byte(`{"subject":"x","toRecipients":[{"emailAddress":{"address":"a@contoso.com"}}]}`))
	if g.status != 201 {
		t.Fatalf("draft: %d %s", g.status, g.body)
	}
	id := g.json(t)["id"].(string)
	g = createSession(t, client, base, tok, id, `{"attachmentType":"file","name":"a.bin","size":3500000}`)
	uploadURL := g.json(t)["uploadUrl"].(string)
	if !strings.HasPrefix(uploadURL, "https://outlook.office365.us/api/v2.0/Users('") {
		t.Fatalf("uploadUrl %q", uploadURL)
	}
	data := randomBytes(t, 3_500_000)
	if g := putRange(t, client, uploadURL, data, 0, len(data), len(data)); g.status != 201 {
		t.Fatalf("PUT: %d %s", g.status, g.body)
	}
	if g := graphDo(t, client, http.MethodPost, base+"/messages/"+id+"/send", tok, "", nil); g.status != 202 {
		t.Fatalf("send: %d %s", g.status, g.body)
	}
	if d := s.Deliveries(); len(d) != 1 || !bytes.Equal(d[0].Message.Attachments[0].Content, data) {
		t.Error("uploaded bytes not delivered")
	}
}
