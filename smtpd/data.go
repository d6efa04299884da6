package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"

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
// releaseRest when the message is consumed. Only the blank line is looked
// for here; where a header without one ends is mailhdr.ReadBlock's
// decision, as everywhere else. A header block still open after
// maxHeaderBytes is too large unless ReadBlock finds that it ended before
// (a body that followed the fields without a blank line).
func readHeader(r io.Reader) ([]byte, *bufio.Reader, error) {
	br := headerBufs.Get().(*bufio.Reader)
	br.Reset(r)
	fail := func(err error) ([]byte, *bufio.Reader, error) {
		releaseRest(br)
		return nil, nil, err
	}
	var hdr []byte
	content := false // a line other than the preamble mailhdr.ReadBlock skips
	for {
		start := len(hdr)
		line, err := br.ReadSlice('\n')
		hdr = append(hdr, line...)
		if len(hdr) > maxHeaderBytes {
			if b := mailhdr.ReadBlock(hdr, true, maxHeaderBytes); b.TooBig || b.BodyOffset >= len(hdr) {
				return fail(errHeaderTooLarge)
			}
			return hdr, br, nil
		}
		if err == bufio.ErrBufferFull {
			// A header line longer than the buffer: keep reading it.
			content = true
			continue
		}
		if err == io.EOF {
			return hdr, br, nil
		}
		if err != nil {
			return fail(err)
		}
		blank := len(line) <= 2 && (string(line) == "\r\n" || string(line) == "\n")
		if blank && content {
			return hdr, br, nil
		}
		if !blank && !(start == 0 && isPreamble(line)) {
			content = true
		}
	}
}

// isPreamble reports whether a message's first line is one that
// mailhdr.ReadBlock skips before the header: an mbox "From " line or a
// lone byte order mark. Blank lines after it, or at the very start, do not
// end the header either.
func isPreamble(line []byte) bool {
	line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
	return bytes.HasPrefix(line, []byte("From ")) || string(line) == "\r\n" || string(line) == "\n"
}

// releaseRest returns readHeader's reader to the pool; it must not be read
// afterwards.
func releaseRest(br *bufio.Reader) {
	br.Reset(nil)
	headerBufs.Put(br)
}

// headerFrom returns the From addresses the policy decides on:
// mailhdr.Senders of the block read by mailhdr.ReadBlock, the splitter and
// the rules the converter uses, so the policy sees exactly the From that
// is sent. An address without a domain is qualified with domain ("From:
// root (Cron Daemon)" from a cron job becomes root@domain).
func headerFrom(hdr []byte, domain string) []policy.Address {
	b := mailhdr.ReadBlock(hdr, true, maxHeaderBytes)
	addrs := mailhdr.Senders(&b.Header, domain)
	out := make([]policy.Address, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, policy.Address{Name: a.Name, Address: a.Address})
	}
	return out
}

// qualifyDomain is the domain that header addresses without one take: the
// configured smtp.qualify_domain, else the envelope sender's domain ("" for
// the null sender, when nothing can be qualified).
func qualifyDomain(configured, sender string) string {
	if configured != "" {
		return configured
	}
	return mailhdr.DomainOf(sender)
}

// usableReplyTo returns addr when it is a mailbox Graph can take, else "":
// a Reply-To is left out rather than sent broken ("root", an encoded word
// that stood in for an address).
func usableReplyTo(addr string) string {
	c, err := mailhdr.Canonical(addr)
	if err != nil || strings.HasPrefix(c, `"`) {
		return ""
	}
	return c
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
