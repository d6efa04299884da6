package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"sync"

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

// Reading a message takes two buffers, crlfReader's and readHeader's.
// They are pooled: allocated per message they were 96 KB of garbage for a
// 4 KB notification, and at hundreds of messages a second the collector
// became one of the daemon's largest costs. receive returns both once the
// message is consumed. Nothing can still hold them then: the header is
// copied out of the buffer, and a Deliverer has finished reading when it
// returns.
var (
	crlfBufs   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}
	headerBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}
)

func newCRLFReader(r io.Reader) *crlfReader {
	br := crlfBufs.Get().(*bufio.Reader)
	br.Reset(r)
	return &crlfReader{r: br}
}

// release returns the buffer to the pool; c must not be read afterwards.
func (c *crlfReader) release() {
	c.r.Reset(nil)
	crlfBufs.Put(c.r)
	c.r = nil
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
		// Only a LF needs a decision; the buffered bytes before the next
		// one are copied in one go instead of a call per byte, which was
		// the largest user-space cost of receiving a message. The result
		// is the same as the byte loop below (FuzzCRLFReader compares).
		if chunk, _ := c.r.Peek(c.r.Buffered()); len(chunk) > 0 && chunk[0] != '\n' {
			if i := bytes.IndexByte(chunk, '\n'); i > 0 {
				chunk = chunk[:i]
			}
			k := copy(p[n:], chunk)
			c.lastCR = chunk[k-1] == '\r'
			c.r.Discard(k)
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
// that ends it, and returns it (a copy, not the buffer's bytes) with a
// reader for the rest of the message, which the caller hands back with
// releaseRest when the message is consumed.
func readHeader(r io.Reader) ([]byte, *bufio.Reader, error) {
	br := headerBufs.Get().(*bufio.Reader)
	br.Reset(r)
	fail := func(err error) ([]byte, *bufio.Reader, error) {
		releaseRest(br)
		return nil, nil, err
	}
	var hdr []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A header line longer than the buffer: keep reading it.
			hdr = append(hdr, line...)
			if len(hdr) > maxHeaderBytes {
				return fail(errHeaderTooLarge)
			}
			continue
		}
		hdr = append(hdr, line...)
		if len(hdr) > maxHeaderBytes {
			return fail(errHeaderTooLarge)
		}
		if err == io.EOF {
			return hdr, br, nil
		}
		if err != nil {
			return fail(err)
		}
		if len(line) <= 2 && (string(line) == "\r\n" || string(line) == "\n") {
			return hdr, br, nil
		}
	}
}

// releaseRest returns readHeader's reader to the pool; it must not be read
// afterwards.
func releaseRest(br *bufio.Reader) {
	br.Reset(nil)
	headerBufs.Put(br)
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
