package smtpd

import (
	"bufio"
	"bytes"
	"io"

	"github.com/emersion/go-message/textproto"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
	"github.com/graphrelay/graphrelay/policy"
)

// maxHeaderBytes bounds the header block read before the policy decision,
// the same bound go-message applies by default.
const maxHeaderBytes = 1 << 20

// crlfReader turns bare LF line endings into CRLF, so the message is stored
// and parsed in one canonical form whatever the client sent (curl -T and
// smtplib with bytes send bare LF).
//
// It also undoes dot-stuffing after a bare LF. go-smtp unstuffs only after
// CRLF (which keeps end-of-data strict against smuggling), but clients that
// treat LF as a line end, smtplib among them, stuff a leading dot there
// too; without this such a line would arrive with its dot doubled. Postfix
// treats bare LF the same way. End-of-data detection is go-smtp's and is
// unaffected: this reader only sees message content.
type crlfReader struct {
	r      *bufio.Reader
	lastCR bool
	buf    []byte
}

func newCRLFReader(r io.Reader) *crlfReader {
	return &crlfReader{r: bufio.NewReaderSize(r, 32<<10)}
}

func (c *crlfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(c.buf) > 0 {
			k := copy(p[n:], c.buf)
			c.buf = c.buf[k:]
			n += k
			continue
		}
		b, err := c.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if b == '\n' && !c.lastCR {
			c.buf = append(c.buf[:0], '\r', '\n')
			c.lastCR = false
			if next, err := c.r.Peek(2); err == nil && next[0] == '.' && next[1] == '.' {
				c.r.ReadByte()
			}
			continue
		}
		c.lastCR = b == '\r'
		p[n] = b
		n++
		// Return at line ends so callers reading line by line see data
		// promptly instead of waiting for a full buffer.
		if b == '\n' {
			break
		}
	}
	return n, nil
}

// readHeader reads the header block, up to and including the blank line
// that ends it, and returns it with a reader for the rest of the message.
func readHeader(r io.Reader) ([]byte, io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A header line longer than the buffer: keep reading it.
			hdr = append(hdr, line...)
			if len(hdr) > maxHeaderBytes {
				return nil, nil, errHeaderTooLarge
			}
			continue
		}
		hdr = append(hdr, line...)
		if len(hdr) > maxHeaderBytes {
			return nil, nil, errHeaderTooLarge
		}
		if err == io.EOF {
			return hdr, br, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if len(line) <= 2 && (string(line) == "\r\n" || string(line) == "\n") {
			return hdr, br, nil
		}
	}
}

// headerFrom returns the addresses in the From header, parsed tolerantly:
// printers write display names with '@' and unquoted specials in them.
func headerFrom(hdr []byte) []policy.Address {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(hdr)))
	if err != nil && h.Len() == 0 {
		return nil
	}
	raw := h.Get("From")
	if raw == "" {
		return nil
	}
	addrs, _ := mailhdr.ParseAddressList(raw)
	out := make([]policy.Address, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, policy.Address{Name: a.Name, Address: a.Address})
	}
	return out
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
