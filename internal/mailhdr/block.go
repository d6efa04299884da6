package mailhdr

import (
	"bytes"

	"github.com/emersion/go-message/textproto"
)

// Block is a header block split off the start of a message or a MIME
// entity by ReadBlock.
type Block struct {
	Header     textproto.Header
	BodyOffset int  // where the body starts in the input
	NoBlank    bool // the header ended at a line that is not a header field
	Repaired   bool // a line without folding indent was joined to its field
	TooBig     bool // the header block exceeded the limit
}

// ReadBlock splits the header block off raw. It is graphrelay's only header
// splitter: the SMTP front end reads the From the policy decides on with
// it, the converter and the MIME passthrough read every header with it,
// and so do notices and "graphrelay sendmail", so all of them see the same
// fields. It replaces go-message's textproto.ReadHeader, which gives up on
// the whole message at the first line that is not a well-formed field and
// so fails on about a fifth of real mail. Tolerated, as seen in the wild:
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
// top says whether raw is a whole message rather than a MIME part. Parsing
// stops with TooBig once the header passes limit bytes. Fields are kept as
// raw byte slices of raw, so nothing is copied.
func ReadBlock(raw []byte, top bool, limit int) Block {
	var res Block
	var fields [][]byte
	fieldStart := -1
	i := 0
	if top {
		i = preambleEnd(raw)
	}
	finish := func(end int) {
		if fieldStart >= 0 {
			fields = append(fields, raw[fieldStart:end])
			fieldStart = -1
		}
	}
	for i < len(raw) {
		if i > limit {
			res.TooBig = true
			break
		}
		next := LineEnd(raw, i)
		line := TrimEOL(raw[i:next])
		switch {
		case len(line) == 0 || (isBlankLine(line) && !startsFolded(raw, next)):
			// The end of the header. A line of blanks counts too
			// unless the field visibly continues after it: generators
			// of bulk mail write " " for the empty line.
			finish(i)
			res.BodyOffset = next
			res.Header = makeHeader(fields)
			return res
		case line[0] == ' ' || line[0] == '\t':
			// Continuation of the current field; before any field it
			// is noise and is skipped.
		case IsFieldLine(line):
			finish(i)
			fieldStart = i
		case fieldStart >= 0 && !bytes.HasPrefix(line, []byte("--")) && headerGoesOn(raw, next):
			// A line that lost its folding indent in the middle of
			// the header (the header visibly goes on after it): keep
			// it as part of the current field rather than starting
			// the body here and losing every field below. A "--"
			// line is a MIME delimiter, never a lost fold.
			res.Repaired = true
		default:
			finish(i)
			res.BodyOffset = i
			res.NoBlank = true
			res.Header = makeHeader(fields)
			return res
		}
		i = next
	}
	finish(min(i, len(raw)))
	res.BodyOffset = min(i, len(raw))
	res.Header = makeHeader(fields)
	return res
}

// preambleEnd skips what precedes a message's first field without being
// part of the message: a UTF-8 byte order mark (Windows tools), an mbox
// "From " line (messages saved from a mailbox), and blank lines before a
// field (a PHP mailer's stray newline, which would otherwise make the
// whole message a body).
func preambleEnd(raw []byte) int {
	i := 0
	if bytes.HasPrefix(raw, []byte("\xEF\xBB\xBF")) {
		i = 3
	}
	if bytes.HasPrefix(raw[i:], []byte("From ")) {
		i = LineEnd(raw, i)
	}
	j := i
	for j < len(raw) && isBlankLine(TrimEOL(raw[j:LineEnd(raw, j)])) {
		j = LineEnd(raw, j)
	}
	if j > i && j < len(raw) && IsFieldLine(TrimEOL(raw[j:LineEnd(raw, j)])) {
		i = j
	}
	return i
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

// IsFieldLine reports whether line starts a header field: a name of
// printable ASCII other than ':' (RFC 5322 §2.2), optional blanks, ':'. The
// name must also start with a letter or digit: RFC 5322 would allow
// "--boundary=:x", but that is a MIME delimiter line under a header that
// lacks its blank line, never a field.
func IsFieldLine(line []byte) bool {
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
	if i >= len(raw) || !(startsFolded(raw, i) || IsFieldLine(TrimEOL(raw[i:LineEnd(raw, i)]))) {
		return false
	}
	for n := 0; n < lostFoldLookahead && i < len(raw); n++ {
		next := LineEnd(raw, i)
		if isBlankLine(TrimEOL(raw[i:next])) {
			return true
		}
		i = next
	}
	return false
}

const lostFoldLookahead = 64

// LineEnd returns the index just past the line that starts at i (past its
// LF, or len(b) for a last line without one).
func LineEnd(b []byte, i int) int {
	if j := indexByteB(b[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(b)
}

// TrimEOL removes a trailing LF or CRLF (or a lone CR).
func TrimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

// Addresses parses every field named key (From and To may appear more than
// once in broken mail) and returns their mailboxes in order, as
// ParseAddressList does; the error is ErrNoAddress when some non-blank
// field held no usable address. The policy and the converter both read the
// header From through it, so the sender the policy checks is the sender
// the message carries.
func Addresses(h *textproto.Header, key string) ([]Address, error) {
	var out []Address
	var err error
	for _, v := range h.Values(key) {
		list, e := ParseAddressList(v)
		if e != nil {
			err = e
		}
		out = append(out, list...)
	}
	return out, err
}

// Senders returns the From addresses of h as graphrelay decides on them
// and sends them: every From field parsed by Addresses, an address without
// a domain qualified with domain (Qualify), and each address in its
// Canonical form where it has one; an address without one is kept as
// written, so that it matches no mailbox or pattern. The SMTP front end
// hands these to the policy and the converter reports the same, so the
// sender the policy checked is the sender that is sent.
func Senders(h *textproto.Header, domain string) []Address {
	addrs, _ := Addresses(h, "From")
	for i := range addrs {
		a := Qualify(addrs[i].Address, domain)
		if c, err := Canonical(a); err == nil {
			a = c
		}
		addrs[i].Address = a
	}
	return addrs
}
