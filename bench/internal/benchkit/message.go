package benchkit

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
)

// WriteLargeMessage writes a scanner-style message to path: a short text
// body and one PDF-like attachment of n bytes (incompressible, like a
// scan), base64 at 76 columns with CRLF, as smtpd spools it. It returns
// the attachment and the message size.
func WriteLargeMessage(path string, n int) ([]byte, int64, error) {
	rng := rand.New(rand.NewPCG(30, 30))
	data := make([]byte, n)
	copy(data, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	for i := 16; i < n; i++ {
		data[i] = byte(rng.Uint32())
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "From: Scanner <scanner@mfp.lan>\r\nTo: Alice <alice@company.com>\r\nSubject: Scan %.0f MB\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"+
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nScanned document attached.\r\n"+
		"--b\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"+
		"Content-Disposition: attachment; filename=\"scan.pdf\"\r\n\r\n", float64(AttachmentMessageBytes(n))/1e6)
	enc := base64.StdEncoding.EncodeToString(data)
	for i := 0; i < len(enc); i += 76 {
		w.WriteString(enc[i:min(i+76, len(enc))])
		w.WriteString("\r\n")
	}
	w.WriteString("--b--\r\n")
	if err := w.Flush(); err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	return data, st.Size(), nil
}

// AttachmentMessageBytes is roughly the size of the message
// WriteLargeMessage makes around an n-byte attachment: base64 is 4/3 of
// it, plus CRLF every 76 columns.
func AttachmentMessageBytes(n int) int64 { return int64(n) * 4 / 3 * 78 / 76 }

// AttachmentForMessage is the attachment size that makes a message of
// about messageBytes.
func AttachmentForMessage(messageBytes int64) int { return int(messageBytes * 3 / 4 * 76 / 78) }
