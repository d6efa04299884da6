package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
)

// writeMessage writes a scanner-style message to path: a short text body
// and one PDF-like attachment of n bytes (incompressible, like a scan),
// base64 at 76 columns with CRLF, as smtpd spools it. It returns the
// attachment and the message size.
func writeMessage(path string, n int) ([]byte, int64, error) {
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
	fmt.Fprintf(w, "From: Scanner <scanner@mfp.lan>\r\nTo: Alice <alice@company.com>\r\nSubject: Scan 30 MB\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"+
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nScanned document attached.\r\n"+
		"--b\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"+
		"Content-Disposition: attachment; filename=\"scan.pdf\"\r\n\r\n")
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
