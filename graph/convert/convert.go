package convert

import (
	"bytes"
	"fmt"
	"io"

	// The charset package registers every x/text charset with go-message,
	// so that go-message's own decoders (used by callers and tests on the
	// same input) agree with mailhdr.
	_ "github.com/emersion/go-message/charset"

	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// Envelope is the SMTP envelope of the message.
type Envelope struct {
	From       string   // MAIL FROM, may be ""
	Recipients []string // RCPT TO addresses; authoritative for who receives the mail
	// QualifyDomain is given to header addresses without a domain
	// (mailhdr.Qualify); "" leaves them unqualified, and then unusable.
	QualifyDomain string
}

// Result is a converted message.
type Result struct {
	Message graph.Message
	// Warnings lists non-fatal decoding problems worth a log line. They
	// name the problem, never message content beyond a charset label.
	Warnings []string
	// HeaderFrom is the decoded From header as the policy layer saw it
	// (mailhdr.Senders: qualified, canonical). Message.From is left unset:
	// whether to set it is policy.
	HeaderFrom []mailhdr.Address
	// MessageID is the Message-ID without angle brackets, for logs.
	MessageID string
	// Deferred lists the attachments whose bytes were left in the input
	// (Options.DeferAttachments), in attachment order.
	Deferred []Deferred
}

// Convert reads one complete RFC 5322 message (CRLF, bare LF or mixed line
// endings, dot-stuffing already removed) and converts it to a Graph message
// following the rules in the package documentation.
//
// It returns an *Error only when no message can be produced: empty input,
// a top-level header block over Options.MaxHeaderBytes, or input over
// Options.MaxBytes. A read error from r is returned wrapped, not as *Error.
func Convert(r io.Reader, env Envelope, opts Options) (*Result, error) {
	opts = opts.withDefaults()
	raw, err := readAll(r, opts.MaxBytes+1)
	if err != nil {
		return nil, fmt.Errorf("convert: reading message: %w", err)
	}
	if int64(len(raw)) > opts.MaxBytes {
		return nil, &Error{reason: fmt.Sprintf("message larger than %d bytes", opts.MaxBytes), tooLarge: true}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errorf("empty message")
	}
	c := &converter{opts: opts, input: raw}
	p := &parser{opts: opts, warn: c.warn}
	root := p.parse(raw, 0, "text/plain", true)
	if root.opaque == "header" {
		return nil, errorf("header block larger than %d bytes", opts.MaxHeaderBytes)
	}
	if root.header.Len() == 0 {
		c.warn("no header fields; whole message read as body")
	}

	res := &Result{}
	m := &res.Message
	c.mapHeaders(&root.header, m)
	c.mapRecipients(&root.header, env, m)
	body, keep := c.selectBody(root)
	m.Body = c.bodyOf(body)
	refs := cidRefs(m.Body)
	m.Attachments = c.attachments(root, body, keep, refs)
	m.Body.Content = rewriteCIDs(m.Body, refs)

	res.HeaderFrom = mailhdr.Senders(&root.header, env.QualifyDomain)
	res.MessageID = firstMsgID(root.header.Get("Message-Id"))
	res.Warnings = c.warnings
	res.Deferred = c.deferred
	return res, nil
}

// readAll reads at most limit bytes, like io.ReadAll over an
// io.LimitReader. Readers that know their size (the spool's
// io.SectionReader, bytes.Reader) get a buffer of the right size at once;
// io.ReadAll's doubling would hold up to twice a large message in memory.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	size := int64(512)
	switch s := r.(type) {
	case interface{ Size() int64 }:
		size = s.Size() + 1 // +1: room for the final read that reports EOF
	case interface{ Len() int }:
		size = int64(s.Len()) + 1
	}
	buf := make([]byte, 0, min(max(size, 512), limit))
	lr := io.LimitReader(r, limit)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// converter holds the state of one conversion.
type converter struct {
	opts     Options
	input    []byte     // the whole message; entities are slices of it
	deferred []Deferred // attachments left in the input
	warnings []string
	seen     map[string]bool
	extra    int // warnings dropped past maxWarnings
}

// warn records a warning once; past maxWarnings it only counts them.
func (c *converter) warn(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	if c.seen == nil {
		c.seen = make(map[string]bool)
	}
	if c.seen[w] {
		return
	}
	c.seen[w] = true
	if len(c.warnings) >= maxWarnings {
		c.extra++
		c.warnings[maxWarnings-1] = fmt.Sprintf("%d more warnings", c.extra+1)
		return
	}
	c.warnings = append(c.warnings, w)
}

// decoded returns the body of a leaf with its transfer encoding removed.
func (c *converter) decoded(e *entity) []byte {
	if !e.didDec {
		var w string
		e.decoded, w = decodeTransfer(e.header.Get("Content-Transfer-Encoding"), e.body)
		if w != "" {
			c.warn("%s", w)
		}
		e.didDec = true
	}
	return e.decoded
}
