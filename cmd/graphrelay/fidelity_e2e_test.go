package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/graph/convert"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// Fidelity end to end: the converter's own test messages, and a sample of
// the shared corpus, sent by real clients (swaks and Python's smtplib),
// each with CRLF and with bare LF line endings, through the real daemon
// wiring. What the fake Graph records must be what a direct
// convert.Convert makes of the bytes the client put on the wire: the
// converter's rules are proven on these messages in graph/convert, so this
// proves that nothing between the socket and Graph (SMTP parsing, line
// ending repair, spooling, the relay, deferred attachments, the draft
// path) changes the message.

// fidelityMsg is one message as the sender has it on disk.
type fidelityMsg struct {
	name string
	raw  []byte
}

// fidelityMessages returns graph/convert's testdata and, when
// GRAPHRELAY_CORPUS is set, about 20 corpus messages with attachments and
// declared charsets, picked evenly from the manifest.
func fidelityMessages(t *testing.T) []fidelityMsg {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "graph", "convert", "testdata", "*.eml"))
	if len(files) == 0 {
		t.Fatal("no graph/convert testdata")
	}
	var out []fidelityMsg
	for _, f := range files {
		out = append(out, readFidelity(t, "testdata/"+filepath.Base(f), f))
	}
	if dir := os.Getenv("GRAPHRELAY_CORPUS"); dir != "" {
		for _, rel := range corpusSample(t, dir, 20) {
			out = append(out, readFidelity(t, rel, filepath.Join(dir, strings.TrimPrefix(rel, "corpus/"))))
		}
	}
	return out
}

func readFidelity(t *testing.T, name, path string) fidelityMsg {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fidelityMsg{name: name, raw: b}
}

// corpusSample picks n manifest entries that declare a charset and carry
// an attachment, leaving out what no SMTP client can send unchanged (NUL
// bytes, bare CR, lines over the daemon's line limit).
func corpusSample(t *testing.T, dir string, n int) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "MANIFEST.tsv"))
	if err != nil {
		t.Fatalf("GRAPHRELAY_CORPUS: %v", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma, r.LazyQuotes, r.FieldsPerRecord = '\t', true, -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var pool []string
	for _, row := range rows[1:] {
		if len(row) < 10 {
			continue
		}
		tags := " " + row[9] + " "
		tier := row[5]
		hasCharset := strings.Contains(tags, " charset:") || strings.Contains(tags, " EW-charset:")
		hasFile := strings.Contains(tags, " disposition-attachment ") || strings.Contains(tags, " application/") || strings.Contains(tags, " image/")
		unsendable := strings.Contains(tags, " line>998 ") || strings.Contains(tags, " NUL-bytes ") || strings.Contains(tags, " bare-CR ")
		if (tier == "core" || tier == "client" || tier == "large") && hasCharset && hasFile && !unsendable {
			pool = append(pool, row[0])
		}
	}
	sort.Strings(pool)
	var out []string
	for i := 0; i < n && i < len(pool); i++ {
		out = append(out, pool[i*len(pool)/n])
	}
	return out
}

var simpleAddr = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)

// fidelityRecipients are the header To and Cc addresses (up to 8) plus one
// recipient only the envelope names, so every recipient path is used.
func fidelityRecipients(raw []byte) []string {
	head := string(raw)
	if i := strings.Index(strings.ReplaceAll(head, "\r\n", "\n"), "\n\n"); i >= 0 {
		head = strings.ReplaceAll(head, "\r\n", "\n")[:i]
	}
	unfolded := regexp.MustCompile(`\n[ \t]+`).ReplaceAllString(head, " ")
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(unfolded, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (!strings.EqualFold(strings.TrimSpace(k), "to") && !strings.EqualFold(strings.TrimSpace(k), "cc")) {
			continue
		}
		for _, a := range simpleAddr.FindAllString(v, -1) {
			if !seen[strings.ToLower(a)] && len(out) < 8 {
				seen[strings.ToLower(a)] = true
				out = append(out, a)
			}
		}
	}
	return append(out, "bcc-only@company.com")
}

const fidelityFrom = "sender@company.com"

func lfOf(b []byte) []byte   { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }
func crlfOf(b []byte) []byte { return bytes.ReplaceAll(lfOf(b), []byte("\n"), []byte("\r\n")) }

func TestFidelityEndToEnd(t *testing.T) {
	t.Parallel()
	py := requireClient(t, "python3")
	swaks := requireClient(t, "swaks")
	// Each client and line ending gets its own relay and fake, so that the
	// four runs proceed in parallel.
	relay := func(t *testing.T) (*runningRelay, *graphtest.Server) {
		// The test messages address example.com and others; a written
		// rule opens relaying to them (the implicit rules allow only
		// company.com).
		return secretRelay(t, []string{"Mail.Send", "Mail.ReadWrite"}, func(c *config.Config) {
			c.Rules = []config.Rule{{Name: "fidelity", Mailbox: "scans@company.com", From: config.FromRewrite, Recipients: []string{"*"}}}
		})
	}
	msgs := fidelityMessages(t)
	dir := t.TempDir()

	for _, ending := range []string{"crlf", "lf"} {
		t.Run("smtplib/"+ending, func(t *testing.T) {
			t.Parallel()
			r, fake := relay(t)
			var jobs []smtplibJob
			var sent []fidelityMsg
			for i, m := range msgs {
				data := crlfOf(m.raw)
				if ending == "lf" {
					data = lfOf(m.raw)
				}
				file := filepath.Join(dir, fmt.Sprintf("smtplib-%s-%d.eml", ending, i))
				os.WriteFile(file, data, 0o644)
				jobs = append(jobs, smtplibJob{File: file, Rcpts: fidelityRecipients(m.raw)})
				// smtplib sends bytes as they are and ends the data with CRLF
				// if it does not already.
				if !bytes.HasSuffix(data, []byte("\r\n")) {
					data = append(data, "\r\n"...)
				}
				sent = append(sent, fidelityMsg{m.name, data})
			}
			t.Logf("%d messages", len(jobs))
			codes := runSmtplib(t, py, r.addr, jobs)
			ds := fake.Deliveries()
			for i, m := range sent {
				if codes[i] != 250 {
					t.Errorf("%s: smtplib got %d", m.name, codes[i])
					continue
				}
				if len(ds) == 0 {
					t.Fatalf("%s: accepted but not delivered", m.name)
				}
				checkFidelity(t, m, jobs[i].Rcpts, ds[0], ending == "lf")
				ds = ds[1:]
			}
		})
		t.Run("swaks/"+ending, func(t *testing.T) {
			if testing.Short() {
				t.Skip("one swaks process per message")
			}
			t.Parallel()
			r, fake := relay(t)
			sentN := 0
			defer func() { t.Logf("%d of %d messages", sentN, len(msgs)) }()
			for i, m := range msgs {
				sentN++
				fake.Reset()
				rcpts := fidelityRecipients(m.raw)
				wire := sendSwaks(t, swaks, r.addr, filepath.Join(dir, fmt.Sprintf("swaks-%s-%d", ending, i)), m.raw, rcpts, ending == "lf")
				ds := fake.Deliveries()
				if len(ds) != 1 {
					t.Errorf("%s: %d deliveries", m.name, len(ds))
					continue
				}
				checkFidelity(t, fidelityMsg{m.name, wire}, rcpts, ds[0], ending == "lf")
			}
		})
	}
}

type smtplibJob struct {
	File  string   `json:"file"`
	Rcpts []string `json:"rcpts"`
}

// runSmtplib sends every job in one SMTP session with smtplib.sendmail,
// one transaction each, and returns the reply code of each.
func runSmtplib(t *testing.T, py, addr string, jobs []smtplibJob) []int {
	t.Helper()
	script := `import json, smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
jobs = json.load(sys.stdin)
codes = []
with smtplib.SMTP(host, int(port), timeout=120) as s:
    s.ehlo("legacy-app.lan")
    for job in jobs:
        try:
            s.sendmail("` + fidelityFrom + `", job["rcpts"], open(job["file"], "rb").read())
            codes.append(250)
        except smtplib.SMTPResponseException as e:
            codes.append(e.smtp_code)
            s.rset()
print(json.dumps(codes))
`
	in, _ := json.Marshal(jobs)
	cmd := exec.Command(py, "-c", script, addr)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, stderr.String())
	}
	var codes []int
	if err := json.Unmarshal(out, &codes); err != nil || len(codes) != len(jobs) {
		t.Fatalf("smtplib output %q: %v", out, err)
	}
	return codes
}

// sendSwaks sends raw with swaks and returns the message as it went over
// the wire (dot-stuffing removed). With CRLF it is swaks's own --data
// @file handling, whose output --dump-mail shows. With bare LF, swaks's
// fix-ups (which turn LF into CRLF) are off (--no-data-fixup) and the data
// is dot-stuffed and terminated here, as a bare-LF client would.
func sendSwaks(t *testing.T, swaks, addr, base string, raw []byte, rcpts []string, bareLF bool) []byte {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"--server", host, "--port", port, "--helo", "legacy-app.lan", "--from", fidelityFrom,
		"--to", strings.Join(rcpts, ","), "--timeout", "120"}
	var wire []byte
	file := base + ".eml"
	if bareLF {
		body := bytes.TrimSuffix(lfOf(raw), []byte("\n"))
		// The data ends "\r\n.": swaks adds the final CRLF.
		stuffed := append(dotStuff(body), "\r\n."...)
		os.WriteFile(file, stuffed, 0o644)
		args = append(args, "--no-data-fixup", "--data", "@"+file)
		wire = append(body, "\r\n"...)
	} else {
		os.WriteFile(file, crlfOf(raw), 0o644)
		args = append(args, "--data", "@"+file)
		dump, err := exec.Command(swaks, append(args, "--dump-mail")...).Output()
		if err != nil {
			t.Fatalf("swaks --dump-mail: %v", err)
		}
		// --dump-mail prints the data without its final "\n." (swaks
		// appends "\r\n." to the file's data and sends a CRLF after it):
		// the message the server receives ends in the "\r\n" cut here.
		wire = append(undotStuff(dump), '\n')
	}
	out, err := exec.Command(swaks, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, lastLines(out, 6))
	}
	if !bytes.Contains(out, []byte("<-  250 2.0.0 queued as ")) {
		t.Errorf("swaks transcript lacks the 250:\n%s", lastLines(out, 6))
	}
	return wire
}

// dotStuff doubles a leading dot on every line (RFC 5321 §4.5.2).
func dotStuff(b []byte) []byte {
	out := bytes.ReplaceAll(b, []byte("\n."), []byte("\n.."))
	if bytes.HasPrefix(out, []byte(".")) {
		out = append([]byte("."), out...)
	}
	return out
}

func undotStuff(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("\r\n.."), []byte("\r\n."))
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkFidelity compares a delivery with the direct conversion of the
// bytes the client sent. With bare LF the server repairs the line endings
// to CRLF, so text is compared with LF line endings.
func checkFidelity(t *testing.T, m fidelityMsg, rcpts []string, d graphtest.Delivery, bareLF bool) {
	t.Helper()
	res, err := convert.Convert(bytes.NewReader(m.raw), convert.Envelope{From: fidelityFrom, Recipients: rcpts}, convert.Options{})
	if err != nil {
		t.Errorf("%s: direct conversion failed: %v", m.name, err)
		return
	}
	want := res.Message
	got := d.Message
	text := func(s string) string {
		if bareLF {
			return strings.ReplaceAll(s, "\r\n", "\n")
		}
		return s
	}
	data := func(b []byte) string {
		if bareLF {
			b = lfOf(b)
		}
		s := sha256.Sum256(b)
		return fmt.Sprintf("%x", s[:8])
	}
	fail := func(what string, g, w any) { t.Errorf("%s (%s): %s = %v, want %v", m.name, d.Kind, what, g, w) }
	if got.Subject != want.Subject {
		fail("subject", got.Subject, want.Subject)
	}
	if !strings.EqualFold(got.BodyType, want.Body.ContentType) {
		fail("body type", got.BodyType, want.Body.ContentType)
	}
	if text(got.Body) != text(want.Body.Content) {
		fail("body", fmt.Sprintf("%.200q", got.Body), fmt.Sprintf("%.200q", want.Body.Content))
	}
	for _, f := range []struct {
		name string
		got  []graphtest.Address
		want []graph.Recipient
	}{{"to", got.To, want.ToRecipients}, {"cc", got.Cc, want.CcRecipients}, {"bcc", got.Bcc, want.BccRecipients}} {
		if g, w := addrsOf(f.got), recipientsOf(f.want); g != w {
			fail(f.name, g, w)
		}
	}
	if len(want.ReplyTo) > 0 {
		if g, w := addrsOf(got.ReplyTo), recipientsOf(want.ReplyTo); g != w {
			fail("replyTo", g, w)
		}
	}
	if g, w := headerSet(got.Headers), wantHeaders(want.InternetMessageHeaders); g != w {
		fail("internetMessageHeaders", g, w)
	}
	if g, w := headerSet(got.ExtendedProperties), wantProps(want.SingleValueExtendedProperties); g != w {
		fail("extended properties", g, w)
	}
	if imp := strings.ToLower(want.Importance); got.Importance != imp && !(imp == "" && got.Importance == "normal") {
		fail("importance", got.Importance, want.Importance)
	}
	if got.ReadReceipt != want.IsReadReceiptRequested {
		fail("read receipt", got.ReadReceipt, want.IsReadReceiptRequested)
	}
	if len(got.Attachments) != len(want.Attachments) {
		fail("attachments", len(got.Attachments), len(want.Attachments))
		return
	}
	for i, a := range want.Attachments {
		g := got.Attachments[i]
		if g.Name != a.Name || g.ContentType != a.ContentType || g.IsInline != a.IsInline || g.ContentID != a.ContentID || data(g.Content) != data(a.ContentBytes) {
			fail(fmt.Sprintf("attachment %d", i), fmt.Sprintf("%q %s inline=%v cid=%q %s", g.Name, g.ContentType, g.IsInline, g.ContentID, data(g.Content)),
				fmt.Sprintf("%q %s inline=%v cid=%q %s", a.Name, a.ContentType, a.IsInline, a.ContentID, data(a.ContentBytes)))
		}
	}
}

func addrsOf(as []graphtest.Address) string {
	var out []string
	for _, a := range as {
		out = append(out, a.Name+" <"+strings.ToLower(a.Address)+">")
	}
	return strings.Join(out, ", ")
}

func recipientsOf(rs []graph.Recipient) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.EmailAddress.Name+" <"+strings.ToLower(r.EmailAddress.Address)+">")
	}
	return strings.Join(out, ", ")
}

func headerSet(hs []graphtest.Header) string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name+": "+h.Value)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func wantHeaders(hs []graph.Header) string {
	conv := make([]graphtest.Header, len(hs))
	for i, h := range hs {
		conv[i] = graphtest.Header{Name: h.Name, Value: h.Value}
	}
	return headerSet(conv)
}

func wantProps(ps []graph.ExtendedProperty) string {
	conv := make([]graphtest.Header, len(ps))
	for i, p := range ps {
		conv[i] = graphtest.Header{Name: p.ID, Value: p.Value}
	}
	return headerSet(conv)
}
