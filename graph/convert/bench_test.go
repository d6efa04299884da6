package convert

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// benchMessage builds a scanner-style message: an HTML and a plain-text
// alternative and one base64 attachment of attSize bytes.
func benchMessage(attSize int) []byte {
	att := make([]byte, attSize)
	rand.Read(att)
	enc := base64.StdEncoding.EncodeToString(att)
	var b strings.Builder
	b.WriteString("From: \"MFP 2nd floor\" <scanner@example.com>\r\nTo: alice@example.com\r\n" +
		"Subject: =?utf-8?q?Scan_=E2=80=93_Pr=C3=BCfbericht?=\r\nX-Mailer: MFP\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\n" +
		"Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nPlease find the scan attached.\r\n--alt\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Please find the scan attached.</p>\r\n--alt--\r\n--mix\r\n" +
		"Content-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename*=utf-8''Pr%C3%BCfbericht.pdf\r\n\r\n")
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--mix--\r\n")
	return []byte(b.String())
}

func BenchmarkConvert(b *testing.B) {
	for _, size := range []int{2500, 7_500_000} {
		msg := benchMessage(size)
		b.Run(fmt.Sprintf("%dbytes", len(msg)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			env := Envelope{Recipients: []string{"alice@example.com"}}
			for b.Loop() {
				if _, err := Convert(bytes.NewReader(msg), env, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
