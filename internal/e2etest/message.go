package e2etest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
)

// SimpleMessage is a small text message, CRLF, whose Subject and
// Message-ID name it, so a test can find it among the fake's deliveries.
func SimpleMessage(from, subject string) string {
	return fmt.Sprintf("From: %s\r\nTo: alice@company.com\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\nbody of %s\r\n",
		from, subject, strings.ReplaceAll(subject, " ", "-"), subject)
}

// LargeMessage is a scanner's message with one PDF-like attachment of n
// incompressible bytes, base64 at 76 columns, CRLF.
func LargeMessage(n int, seed uint64) (raw, attachment []byte) {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	attachment = make([]byte, n)
	copy(attachment, "%PDF-1.4\n")
	for i := 9; i < n; i++ {
		attachment[i] = byte(rng.Uint32())
	}
	var b bytes.Buffer
	b.WriteString("From: Scanner <scanner@mfp.lan>\r\nTo: Alice <alice@company.com>\r\nSubject: Large scan\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nScanned document attached.\r\n" +
		"--b\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"scan.pdf\"\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(attachment)
	for i := 0; i < len(enc); i += 76 {
		b.WriteString(enc[i:min(i+76, len(enc))] + "\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.Bytes(), attachment
}
