package convert

import (
	"bytes"

	"github.com/emersion/go-message/textproto"
)

// headerResult is what readHeader found at the start of an entity.
type headerResult struct {
	header   textproto.Header
	bodyOff  int  // offset of the body in the entity
	noBlank  bool // the header ended at a line that is not a header field
	repaired bool // a line without folding indent was joined to its field
	tooBig   bool // the header block exceeded the limit
}

// readHeader splits the header block off raw and returns it as a go-message
// textproto.Header. It replaces textproto.ReadHeader, which gives up on the
// whole message at the first line that is not a well-formed field; mail in
// the wild has these (see the package doc, rule "Malformed input"):
//
//   - an mbox "From " line before the first field (top level only);
//   - a UTF-8 byte order mark, or blank lines, before the first field (top
//     level only);
//   - a continuation line before any field (ignored);
//   - a line of blanks meant as the empty line;
//   - a line that lost its folding indent, followed by more fields: it is
//     joined to the field above (MimeKit issue 358);
//   - a line that is not a field and no blank line before the body: the
//     header ends there and the line starts the body, as Python's email
//     package does;
//   - bare LF, CRLF and mixed line endings.
//
// Fields are kept as raw byte slices of raw, so nothing is copied.
func readHeader(raw []byte, top bool, limit int) headerResult {
	var res headerResult
	var fields [][]byte
	fieldStart := -1
	i := 0
	if top {
		// A UTF-8 byte order mark (Windows tools) and an mbox "From "
		// line (messages saved from a mailbox) precede the header.
		if bytes.HasPrefix(raw, []byte("\xEF\xBB\xBF")) {
			i = 3
		}
		if bytes.HasPrefix(raw[i:], []byte("From ")) {
			i = lineEnd(raw, i)
		}
		// Blank lines before the first field (a PHP mailer's stray
		// newline) would make the whole message a body.
		j := i
		for j < len(raw) && isBlankLine(trimEOL(raw[j:lineEnd(raw, j)])) {
			j = lineEnd(raw, j)
		}
		if j > i && j < len(raw) && isFieldLine(trimEOL(raw[j:lineEnd(raw, j)])) {
			i = j
		}
	}
	finish := func(end int) {
		if fieldStart >= 0 {
			fields = append(fields, raw[fieldStart:end])
			fieldStart = -1
		}
	}
	for i < len(raw) {
		if i > limit {
			res.tooBig = true
			break
		}
		next := lineEnd(raw, i)
		line := trimEOL(raw[i:next])
		switch {
		case len(line) == 0 || (isBlankLine(line) && !startsFolded(raw, next)):
			// The end of the header. A line of blanks counts too
			// unless the field visibly continues after it: generators
			// of bulk mail write " " for the empty line.
			finish(i)
			res.bodyOff = next
			res.header = makeHeader(fields)
			return res
		case line[0] == ' ' || line[0] == '\t':
			// Continuation of the current field; before any field it
			// is noise and is skipped.
		case isFieldLine(line):
			finish(i)
			fieldStart = i
		case fieldStart >= 0 && !bytes.HasPrefix(line, []byte("--")) && headerGoesOn(raw, next):
			// A line that lost its folding indent in the middle of
			// the header (the header visibly goes on after it): keep
			// it as part of the current field rather than starting
			// the body here and losing every field below. A "--"
			// line is a MIME delimiter, never a lost fold.
			res.repaired = true
		default:
			finish(i)
			res.bodyOff = i
			res.noBlank = true
			res.header = makeHeader(fields)
			return res
		}
		i = next
	}
	finish(min(i, len(raw)))
	res.bodyOff = min(i, len(raw))
	res.header = makeHeader(fields)
	return res
}

// makeHeader builds a textproto.Header in document order. AddRaw inserts
// at the top, so the fields are added last to first.
func makeHeader(fields [][]byte) textproto.Header {
	var h textproto.Header
	for i := len(fields) - 1; i >= 0; i-- {
		h.AddRaw(fields[i])
	}
	return h
}

// isFieldLine reports whether line starts a header field: a name of
// printable ASCII other than ':' (RFC 5322 §2.2), optional blanks, ':'. The
// name must also start with a letter or digit: RFC 5322 would allow
// "--boundary=:x", but that is a MIME delimiter line under a header that
// lacks its blank line, never a field.
func isFieldLine(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 || !isAlnum(name[0]) {
		return false
	}
	for _, c := range name {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isBlankLine(line []byte) bool {
	return len(bytes.Trim(line, " \t")) == 0
}

// startsFolded reports whether the line at i starts with a blank.
func startsFolded(b []byte, i int) bool {
	return i < len(b) && (b[i] == ' ' || b[i] == '\t')
}

// headerGoesOn reports whether the lines from i look like the rest of a
// header: the first is a field or a continuation, and a blank line follows
// within lostFoldLookahead lines. Without the blank line the text is more
// likely a body that starts without one ("Hello,\nRegards: me"). The
// lookahead is bounded so that a header of many bad lines stays linear.
func headerGoesOn(raw []byte, i int) bool {
	if i >= len(raw) || !(startsFolded(raw, i) || isFieldLine(trimEOL(raw[i:lineEnd(raw, i)]))) {
		return false
	}
	for n := 0; n < lostFoldLookahead && i < len(raw); n++ {
		next := lineEnd(raw, i)
		if isBlankLine(trimEOL(raw[i:next])) {
			return true
		}
		i = next
	}
	return false
}

const lostFoldLookahead = 64

// lineEnd returns the index just past the line that starts at i (past its
// LF, or len(b) for a last line without one).
func lineEnd(b []byte, i int) int {
	if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(b)
}

// trimEOL removes a trailing LF or CRLF (or a lone CR).
func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}
