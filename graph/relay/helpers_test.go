package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/testlog"
)

var readWrite = []string{"Mail.Send", "Mail.ReadWrite"}

// newRelay returns a Relay sending to fake with a token carrying roles.
// Its log is the test's own: a failure shows the last lines and the file
// holding the rest.
func newRelay(t *testing.T, fake *graphtest.Server, roles []string, opts Options) (*Relay, *testlog.Log) {
	t.Helper()
	logs := testlog.New(t, "relay log")
	log := logs.Logger()
	newTokens := func() oauth2.TokenSource {
		return oauth2.StaticTokenSource(&oauth2.Token{
			AccessToken: fake.MintAccessToken(roles, time.Hour), TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)})
	}
	client := graph.NewClient(fake.GraphURL(), fake.HTTPClient(), newTokens, log)
	return New(client, true, log, opts), logs
}

func testEnvelope(format string, rcpts ...string) *envelope.Envelope {
	return &envelope.Envelope{ID: envelope.NewID(), From: "printer@mfp.lan", Recipients: rcpts,
		Mailbox: envelope.Mailbox{Address: "scans@company.com"}, Format: format}
}

// part is one attachment of a generated test message.
type part struct {
	name, ctype string
	size        int
	cid         string // referenced from the HTML body when set
	data        []byte // filled by buildMessage
}

// buildMessage writes a multipart message, CRLF as smtpd spools it, with
// an HTML body referencing the parts that have a cid, and the parts as
// base64 at 76 columns with deterministic pseudo-random content.
func buildMessage(seed uint64, subject string, parts []part) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b bytes.Buffer
	b.WriteString("From: Printer <printer@mfp.lan>\r\nTo: Alice <alice@company.com>\r\nSubject: " + subject +
		"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n")
	b.WriteString("--mixed\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Scan attached.</p>")
	for _, p := range parts {
		if p.cid != "" {
			fmt.Fprintf(&b, `<img src="cid:%s">`, p.cid)
		}
	}
	b.WriteString("\r\n")
	for i := range parts {
		p := &parts[i]
		p.data = make([]byte, p.size)
		for j := range p.data {
			p.data[j] = byte(rng.Uint32())
		}
		fmt.Fprintf(&b, "--mixed\r\nContent-Type: %s; name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n", p.ctype, p.name)
		if p.cid != "" {
			fmt.Fprintf(&b, "Content-ID: <%s>\r\nContent-Disposition: inline\r\n", p.cid)
		} else {
			fmt.Fprintf(&b, "Content-Disposition: attachment; filename=\"%s\"\r\n", p.name)
		}
		b.WriteString("\r\n")
		writeBase64(&b, p.data)
	}
	b.WriteString("--mixed--\r\n")
	return b.Bytes()
}

func writeBase64(b *bytes.Buffer, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for i := 0; i < len(enc); i += 76 {
		b.WriteString(enc[i:min(i+76, len(enc))])
		b.WriteString("\r\n")
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%x", s[:8])
}

// requestLine is "METHOD path-suffix status" for a Graph request, with the
// mailbox and message ids cut away, for comparing request sequences.
func requestLines(fake *graphtest.Server) []string {
	var out []string
	// The fake records a request after answering it, so under load a later
	// request can be recorded first; order by when each one started.
	reqs := fake.GraphRequests()
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].Start.Before(reqs[j].Start) })
	for _, r := range reqs {
		p := r.Path
		if i := strings.Index(p, "/messages"); i >= 0 {
			p = p[i:]
			parts := strings.Split(p, "/")
			if len(parts) > 2 {
				parts[2] = "{id}"
			}
			p = strings.Join(parts, "/")
		} else if i := strings.LastIndex(p, "/"); i >= 0 {
			p = p[i:]
		}
		out = append(out, fmt.Sprintf("%s %s %d", r.Method, p, r.Status))
	}
	return out
}
