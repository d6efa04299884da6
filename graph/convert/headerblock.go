package convert

import (
	"github.com/emersion/go-message/textproto"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// headerResult is what readHeader found at the start of an entity.
type headerResult struct {
	header   textproto.Header
	bodyOff  int  // offset of the body in the entity
	noBlank  bool // the header ended at a line that is not a header field
	repaired bool // a line without folding indent was joined to its field
	tooBig   bool // the header block exceeded the limit
}

// readHeader splits the header block off raw with mailhdr.ReadBlock, the
// tolerant splitter the SMTP front end also reads the policy's From with,
// so the converter and the policy always see the same fields.
func readHeader(raw []byte, top bool, limit int) headerResult {
	b := mailhdr.ReadBlock(raw, top, limit)
	return headerResult{header: b.Header, bodyOff: b.BodyOffset, noBlank: b.NoBlank, repaired: b.Repaired, tooBig: b.TooBig}
}

// lineEnd returns the index just past the line that starts at i.
func lineEnd(b []byte, i int) int { return mailhdr.LineEnd(b, i) }

// trimEOL removes a trailing LF or CRLF (or a lone CR).
func trimEOL(line []byte) []byte { return mailhdr.TrimEOL(line) }
