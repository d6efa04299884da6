package convert

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// corpusFiles lists the messages of $GRAPHRELAY_CORPUS from its
// MANIFEST.tsv (first column, "corpus/<dir>/<file>"), or every */*.eml.
func corpusFiles(t *testing.T) (string, []string) {
	dir := os.Getenv("GRAPHRELAY_CORPUS")
	if dir == "" {
		t.Skip("GRAPHRELAY_CORPUS not set")
	}
	var files []string
	if m, err := os.ReadFile(filepath.Join(dir, "MANIFEST.tsv")); err == nil {
		for i, line := range strings.Split(string(m), "\n") {
			f, _, _ := strings.Cut(line, "\t")
			if i == 0 || f == "" {
				continue
			}
			_, rel, _ := strings.Cut(f, "/")
			files = append(files, filepath.Join(dir, rel))
		}
	} else {
		files, _ = filepath.Glob(filepath.Join(dir, "*", "*.eml"))
	}
	if len(files) == 0 {
		t.Fatalf("no messages under %s", dir)
	}
	return dir, files
}

// corpusEnvelope uses the captured envelope of client messages (a .json
// beside the .eml) and otherwise the header To and Cc plus one Bcc-only
// recipient, so that every recipient path is exercised.
func corpusEnvelope(file string, raw []byte) Envelope {
	if j, err := os.ReadFile(strings.TrimSuffix(file, ".eml") + ".json"); err == nil {
		var e struct {
			From string   `json:"mail_from"`
			To   []string `json:"rcpt_tos"`
		}
		if json.Unmarshal(j, &e) == nil {
			return Envelope{From: e.From, Recipients: e.To}
		}
	}
	env := Envelope{Recipients: []string{"bcc-only@example.net"}}
	hr := readHeader(raw, true, DefaultMaxHeaderBytes)
	for _, k := range []string{"To", "Cc"} {
		for _, v := range hr.header.Values(k) {
			list, _ := mailhdr.ParseAddressList(v)
			for _, a := range list {
				env.Recipients = append(env.Recipients, a.Address)
			}
		}
	}
	return env
}

type outcome struct {
	res   *Result
	err   error
	panic any
}

// convertBounded runs Convert in a goroutine and gives up after limit.
func convertBounded(raw []byte, env Envelope, limit time.Duration) (outcome, bool) {
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() {
			o.panic = recover()
			done <- o
		}()
		o.res, o.err = Convert(bytes.NewReader(raw), env, Options{})
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case o := <-done:
		return o, true
	case <-timer.C:
		return outcome{}, false
	}
}

func TestCorpus(t *testing.T) {
	dir, files := corpusFiles(t)
	var clean, warned, failed, oracleOK, oracleFailed, compared, undecodable int
	var attachments, attachmentBytes int64
	reasons := map[string]int{}
	warnKinds := map[string]int{}
	for _, file := range files {
		rel, _ := filepath.Rel(dir, file)
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		env := corpusEnvelope(file, raw)
		o, finished := convertBounded(raw, env, 5*time.Second)
		switch {
		case !finished:
			t.Errorf("%s: Convert did not finish in 5s", rel)
			continue
		case o.panic != nil:
			t.Errorf("%s: panic: %v", rel, o.panic)
			continue
		case o.err != nil:
			failed++
			reasons[o.err.Error()]++
			var ce interface{ InvalidContent() bool }
			if !errors.As(o.err, &ce) || !ce.InvalidContent() {
				t.Errorf("%s: error %v is not an InvalidContent error", rel, o.err)
			}
			continue
		case len(o.res.Warnings) > 0:
			warned++
			for _, w := range o.res.Warnings {
				warnKinds[warningKind(w)]++
			}
		default:
			clean++
		}
		m := o.res.Message
		checkGraphRules(t, rel, &m)
		checkRecipients(t, rel, &m, env)
		for _, a := range m.Attachments {
			attachments++
			attachmentBytes += int64(len(a.ContentBytes))
		}

		leaves, oerr := oracle(raw)
		if oerr != nil {
			oracleFailed++
			continue
		}
		oracleOK++
		c, u := compareLeaves(t, rel, o.res, leaves)
		compared += c
		undecodable += u
	}
	t.Logf("corpus: %d messages: %d clean, %d with warnings, %d errors %v", len(files), clean, warned, failed, reasons)
	t.Logf("corpus: %d attachments, %d bytes; the go-message oracle parsed %d messages (failed on %d): %d non-body parts compared byte for byte, %d it could not decode",
		attachments, attachmentBytes, oracleOK, oracleFailed, compared, undecodable)
	t.Logf("corpus: warnings by kind:%s", sortedCounts(warnKinds))
}

var variable = regexp.MustCompile(`"[^"]*"|\b[0-9]+ `)

// warningKind turns a warning into a category for the summary: quoted
// labels and counts are replaced.
func warningKind(w string) string {
	return variable.ReplaceAllStringFunc(w, func(m string) string {
		if strings.HasPrefix(m, `"`) {
			return "…"
		}
		return "N "
	})
}

// sortedCounts formats a histogram, most frequent first.
func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n\t%4d  %s", m[k], k)
	}
	return b.String()
}

var mediaTypeRE = regexp.MustCompile(`^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$`)

// checkGraphRules checks what Graph enforces on a sendMail message.
func checkGraphRules(t *testing.T, rel string, m *graph.Message) {
	j, err := json.Marshal(graph.SendMailRequest{Message: *m})
	if err != nil || !json.Valid(j) {
		t.Errorf("%s: JSON: %v", rel, err)
	}
	if len(m.InternetMessageHeaders) > GraphMaxHeaders {
		t.Errorf("%s: %d x-headers", rel, len(m.InternetMessageHeaders))
	}
	for _, h := range m.InternetMessageHeaders {
		if !strings.HasPrefix(strings.ToLower(h.Name), "x-") || h.Value == "" || strings.ContainsAny(h.Name+h.Value, "\r\n") {
			t.Errorf("%s: bad header %q", rel, h)
		}
	}
	if m.Body.ContentType != graph.BodyText && m.Body.ContentType != graph.BodyHTML {
		t.Errorf("%s: body type %q", rel, m.Body.ContentType)
	}
	if strings.ContainsRune(m.Body.Content+m.Subject, 0) {
		t.Errorf("%s: NUL in body or subject", rel)
	}
	for _, a := range m.Attachments {
		if a.Name == "" || a.ODataType != graph.FileAttachmentType || !mediaTypeRE.MatchString(a.ContentType) ||
			strings.ContainsAny(a.Name, "/\\\x00") || (a.IsInline && a.ContentID == "") {
			t.Errorf("%s: bad attachment %q %q %q inline=%v cid=%q", rel, a.Name, a.ODataType, a.ContentType, a.IsInline, a.ContentID)
		}
	}
}

// checkRecipients: every envelope recipient receives the message once.
func checkRecipients(t *testing.T, rel string, m *graph.Message, env Envelope) {
	got := map[string]int{}
	for _, list := range [][]graph.Recipient{m.ToRecipients, m.CcRecipients, m.BccRecipients} {
		for _, r := range list {
			got[strings.ToLower(r.EmailAddress.Address)]++
		}
	}
	want := map[string]bool{}
	for _, a := range envelopeAddrs(env) {
		want[strings.ToLower(a)] = true
	}
	for a := range want {
		if got[a] != 1 {
			t.Errorf("%s: envelope recipient %q received %d times", rel, a, got[a])
		}
	}
	for a := range got {
		if !want[a] {
			t.Errorf("%s: %q is not an envelope recipient", rel, a)
		}
	}
}

// leaf is one leaf part as the oracle sees it.
type leaf struct {
	mediaType string
	candidate bool // could be the body: a text part not marked as a file
	display   bool // a candidate in text/plain or text/html
	// rendering is a text part inside a multipart/alternative that is not
	// marked as an attachment: another rendering of the body (rule 22),
	// which need not arrive as an attachment unless it is a calendar that
	// the message carries nowhere else.
	rendering bool
	data      []byte
	decodeOK  bool
}

// oracle walks the leaf parts independently of the converter, with
// go-message's strict textproto reader and multipart reader and the
// standard library's decoders. It fails on input that go-message cannot
// parse; the caller then skips the comparison.
func oracle(raw []byte) ([]leaf, error) {
	// The one normalisation: a leading mbox "From " line, which is not part
	// of the message, would make textproto reject the whole header.
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, err
	}
	var out []leaf
	err = oracleWalk(h, br, "text/plain", 0, false, &out)
	return out, err
}

func oracleWalk(h textproto.Header, body io.Reader, defType string, depth int, inAlt bool, out *[]leaf) error {
	if depth > 50 {
		return errors.New("oracle: too deep")
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case h.Get("Content-Type") == "":
		mt, params, err = defType, nil, nil
	case err == nil && !strings.Contains(mt, "/"):
		mt = "text/plain" // RFC 2045 §5.2: an invalid type reads as text/plain
	}
	if err != nil {
		return err
	}
	if strings.HasPrefix(mt, "multipart/") {
		child := "text/plain"
		if mt == "multipart/digest" {
			child = "message/rfc822"
		}
		mr := textproto.NewMultipartReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := oracleWalk(p.Header, p, child, depth+1, inAlt || mt == "multipart/alternative", out); err != nil {
				return err
			}
		}
	}
	rawBody, err := io.ReadAll(body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		// go-message reports a missing close delimiter as an
		// unexpected EOF after the last part's data; keep that data.
		return err
	}
	l := leaf{mediaType: mt, decodeOK: true}
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		l.data, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(rawBody)))
	case "quoted-printable":
		l.data, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(rawBody)))
	case "", "7bit", "8bit", "binary":
		l.data = rawBody
	default:
		l.data, l.decodeOK = rawBody, false
	}
	if err != nil {
		l.decodeOK = false
	}
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	switch mt {
	case "text/plain", "text/html", "text/enriched", "text/richtext":
		l.candidate = disp != "attachment" && dparams["filename"] == "" && params["name"] == ""
		l.display = l.candidate && mt != "text/enriched" && mt != "text/richtext"
	}
	l.rendering = inAlt && strings.HasPrefix(mt, "text/") && disp != "attachment" && !l.candidate
	*out = append(*out, l)
	return nil
}

// compareLeaves checks that every non-body leaf the oracle found is an
// attachment with the same bytes (a multiset of SHA-256 hashes, and the
// same total size), and that the body is not empty when a non-empty text
// part exists. Leaves the oracle could not decode (invalid base64 or
// quoted-printable that the converter decodes leniently) are counted and
// left out of the comparison; the other leaves of the message still count.
func compareLeaves(t *testing.T, rel string, res *Result, leaves []leaf) (compared, undecodable int) {
	if hasWarning(res, "nesting deeper") || hasWarning(res, "MIME parts") || hasWarning(res, "part header exceeds") {
		return 0, 0 // subtrees kept whole by a limit are compared by the limit tests
	}
	want := map[[32]byte]int{}
	texts := map[[32]byte]int{}
	var wantBytes int64
	nonEmptyText := false
	elsewhere := map[[32]byte]int{} // leaves outside the alternatives
	for _, l := range leaves {
		if !l.rendering && !l.candidate {
			elsewhere[sha256.Sum256(l.data)]++
		}
	}
	for _, l := range leaves {
		sum := sha256.Sum256(l.data)
		switch {
		case !l.decodeOK:
			undecodable++
		case l.rendering && (!isCalendar(l.mediaType) || elsewhere[sum] > 0):
			texts[sum]++ // may be dropped: another rendering, or a calendar carried twice
		case l.candidate:
			texts[sum]++
			if l.display && len(bytes.TrimSpace(l.data)) > 0 {
				nonEmptyText = true
			}
		default:
			want[sum]++
			wantBytes += int64(len(l.data))
			compared++
		}
	}
	var gotBytes int64
	for _, a := range res.Message.Attachments {
		sum := sha256.Sum256(a.ContentBytes)
		switch {
		case want[sum] > 0:
			want[sum]--
			gotBytes += int64(len(a.ContentBytes))
		case texts[sum] > 0:
			texts[sum]-- // an extra text part kept as an attachment
		}
	}
	for _, n := range want {
		if n > 0 {
			t.Errorf("%s: a non-body part is missing from the attachments or its bytes differ", rel)
			break
		}
	}
	if gotBytes != wantBytes {
		t.Errorf("%s: attachment bytes %d, oracle %d", rel, gotBytes, wantBytes)
	}
	if nonEmptyText && strings.TrimSpace(res.Message.Body.Content) == "" {
		t.Errorf("%s: empty body although a non-empty text part exists", rel)
	}
	return compared, undecodable
}
