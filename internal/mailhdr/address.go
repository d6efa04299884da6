package mailhdr

import (
	"errors"
	"strings"
)

// Address is one mailbox from an address-list header. Name is decoded to
// UTF-8; Address is kept as written (no case change), apart from removing
// comments, blanks, angle brackets, a source route and a "mailto:" prefix.
type Address struct {
	Name    string
	Address string
}

// ErrNoAddress is returned by ParseAddressList when a non-blank field holds
// no usable address.
var ErrNoAddress = errors.New("mailhdr: no address found")

// ParseAddressList parses an address-list header value (From, To, Cc, Bcc,
// Reply-To) tolerantly and returns every mailbox it can find, in order.
// It accepts, beyond RFC 5322:
//   - display names with '@' or other specials, unquoted
//     ("MFP 2nd floor scanner@printer.local <scanner@printer.local>");
//   - "Last, First <addr>" where the comma was meant as part of the name;
//   - RFC 2047 encoded display names, also inside quotes, and raw 8-bit
//     names (see DecodeText);
//   - bare addresses, "addr (Name)" comments, group syntax
//     ("Team: a@x, b@x;", "undisclosed-recipients:;");
//   - angle addresses or bare addresses not separated by commas;
//   - "<mailto:addr>" and source routes ("<@relay:addr>");
//   - unterminated quotes, comments and angle brackets.
//
// A mailbox without '@' is kept when it is a single word (cron mails to
// "root"). The error is ErrNoAddress, and only when the field is not blank,
// is not just empty groups, and yields no address at all.
func ParseAddressList(raw string) ([]Address, error) {
	toks := tokenizeAddr(unfold(raw))
	p := addrParser{}
	var seg []addrToken
	for _, t := range toks {
		switch t.kind {
		case tokComma, tokSemicolon:
			p.segment(seg)
			seg = seg[:0]
		case tokColon:
			if isGroupName(seg) {
				seg = seg[:0]
				continue
			}
			// A colon that cannot open a group is text ("Re: scan").
			seg = append(seg, addrToken{kind: tokAtom, text: ":", space: t.space})
		default:
			seg = append(seg, t)
		}
	}
	p.segment(seg)
	p.flushPending()
	if len(p.out) == 0 && p.content {
		return nil, ErrNoAddress
	}
	return p.out, nil
}

type tokKind int

const (
	tokAtom tokKind = iota
	tokQuoted
	tokComment
	tokAngle
	tokComma
	tokSemicolon
	tokColon
)

// addrToken is one lexical unit. space records whether blanks preceded it,
// which decides whether adjacent pieces form one word ("john"@"x" or
// john(comment)@x) or separate words of a display name.
type addrToken struct {
	kind  tokKind
	text  string
	space bool
}

// tokenizeAddr splits an address list into tokens. Every construct that
// can be left open (quotes, comments, angle brackets) is handled so that no
// input makes the tokenizer fail or take more than linear time.
func tokenizeAddr(s string) []addrToken {
	var toks []addrToken
	space := false
	// After an unterminated comment, '(' is ordinary text: rescanning to
	// the end from every later '(' would take quadratic time.
	comments := true
	for i := 0; i < len(s); {
		c := s[i]
		tok := addrToken{space: space}
		switch {
		case c == ' ' || c == '\t' || c == '>':
			// A stray '>' is noise; treat it as a separator.
			space = true
			i++
			continue
		case c == '"':
			text, n, ok := scanQuoted(s[i+1:])
			if !ok {
				// An unterminated quote would swallow the rest of the
				// list; reading on as if it were absent recovers the
				// addresses after it.
				i++
				continue
			}
			tok.kind, tok.text = tokQuoted, text
			i += 1 + n
		case c == '(' && comments:
			text, n, ok := scanComment(s[i+1:])
			if !ok {
				comments = false
				i++
				continue
			}
			tok.kind, tok.text = tokComment, text
			i += 1 + n
		case c == '<':
			tok.kind, tok.text = tokAngle, s[i+1:]
			n := len(s) - i
			if end := strings.IndexByte(s[i+1:], '>'); end >= 0 {
				tok.text, n = s[i+1:i+1+end], end+2
			}
			i += n
		case c == ',':
			tok.kind, tok.text = tokComma, ","
			i++
		case c == ';':
			tok.kind, tok.text = tokSemicolon, ";"
			i++
		case c == ':':
			tok.kind, tok.text = tokColon, ":"
			i++
		default:
			j := i + 1
			for j < len(s) && !atomEnd(s[j], comments) {
				j++
			}
			tok.kind, tok.text = tokAtom, s[i:j]
			i = j
		}
		toks = append(toks, tok)
		// A comment separates words for display purposes, but "john(c)@x"
		// still forms one address, so a comment does not reset space.
		if tok.kind != tokComment {
			space = false
		}
	}
	return toks
}

// atomEnd reports whether c ends an atom.
func atomEnd(c byte, comments bool) bool {
	switch c {
	case ' ', '\t', '"', '<', '>', ',', ';', ':':
		return true
	case '(':
		return comments
	}
	return false
}

// scanQuoted reads a quoted string body; it returns the unescaped text, the
// number of bytes consumed including the closing quote, and false when the
// quote is never closed.
func scanQuoted(s string) (string, int, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), i + 1, true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, false
}

// scanComment reads a (possibly nested) comment body after its '('; false
// means the comment is never closed.
func scanComment(s string) (string, int, bool) {
	var b strings.Builder
	depth := 1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
			continue
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return b.String(), i + 1, true
			}
		}
		b.WriteByte(s[i])
	}
	return "", 0, false
}

// isGroupName reports whether the tokens before a colon can be a group's
// display name: some phrase, and nothing that is already an address.
func isGroupName(seg []addrToken) bool {
	phrase := false
	for _, t := range seg {
		switch t.kind {
		case tokAngle:
			return false
		case tokAtom:
			if strings.Contains(t.text, "@") {
				return false
			}
			phrase = true
		case tokQuoted:
			phrase = true
		}
	}
	return phrase
}

// addrParser turns comma-separated segments into addresses.
type addrParser struct {
	out     []Address
	pending []addrToken // a segment with no address, maybe "Last" of "Last, First <x>"
	content bool        // some segment had tokens (group names do not count)
}

// segment handles the tokens between two commas.
func (p *addrParser) segment(seg []addrToken) {
	if len(seg) == 0 {
		return
	}
	p.content = true
	hasAngle, hasAt := false, false
	for _, t := range seg {
		switch {
		case t.kind == tokAngle:
			hasAngle = true
		case t.kind == tokAtom && strings.Contains(t.text, "@"):
			hasAt = true
		}
	}
	if !hasAngle && !hasAt {
		p.flushPending()
		p.pending = append([]addrToken{}, seg...)
		return
	}
	if hasAngle && p.pending != nil && seg[0].kind != tokAngle {
		// "Doe, John <john@x>": the name was split at its comma.
		merged := append(append([]addrToken{}, p.pending...), addrToken{kind: tokAtom, text: ","})
		merged = append(merged, seg...)
		p.pending = nil
		seg = merged
	} else {
		p.flushPending()
	}
	p.mailboxes(seg)
}

// flushPending emits a held segment that turned out not to be part of a
// name: a single word becomes a local address ("root"), anything longer is
// dropped as a stray phrase.
func (p *addrParser) flushPending() {
	if p.pending == nil {
		return
	}
	words := joinWords(p.pending)
	if len(words) == 1 && words[0].kind == tokAtom {
		if a := cleanAddr(words[0].text); a != "" {
			p.out = append(p.out, Address{Address: a})
		}
	}
	p.pending = nil
}

// mailboxes extracts one or more mailboxes from a segment that has an angle
// address or an '@' word.
func (p *addrParser) mailboxes(seg []addrToken) {
	var phrase, comments []addrToken
	emitted := false
	for _, t := range seg {
		switch t.kind {
		case tokAngle:
			addr := cleanAddr(t.text)
			if addr == "" {
				// "<>" or junk: maybe the phrase holds the address.
				continue
			}
			p.out = append(p.out, Address{Name: nameOf(phrase, comments), Address: addr})
			phrase, comments, emitted = phrase[:0], comments[:0], true
		case tokComment:
			comments = append(comments, t)
		default:
			phrase = append(phrase, t)
		}
	}
	if len(phrase) == 0 && len(comments) == 0 {
		return
	}
	words := joinWords(phrase)
	var at []string
	var rest []addrToken
	for _, w := range words {
		if strings.Contains(w.text, "@") && w.kind != tokQuoted {
			at = append(at, w.text)
		} else {
			rest = append(rest, w)
		}
	}
	switch {
	case len(at) == 0 && emitted:
		// "<john@x> John Doe": a trailing name for the last mailbox.
		last := &p.out[len(p.out)-1]
		if last.Name == "" {
			last.Name = nameOf(rest, comments)
		}
	case len(at) == 1:
		if a := cleanAddr(at[0]); a != "" {
			p.out = append(p.out, Address{Name: nameOf(rest, comments), Address: a})
		}
	default:
		// Several bare addresses without commas between them.
		for _, s := range at {
			if a := cleanAddr(s); a != "" {
				p.out = append(p.out, Address{Address: a})
			}
		}
	}
}

// joinWords glues tokens that touch (no blank between them) into words, so
// that `"john doe"@x` and `john(comment)@x` become single words. Comments
// are dropped here; the caller collects them separately.
func joinWords(toks []addrToken) []addrToken {
	var out []addrToken
	for _, t := range toks {
		if t.kind == tokComment {
			continue
		}
		if len(out) > 0 && joinable(out[len(out)-1], t) {
			last := &out[len(out)-1]
			last.text = quoteIf(*last) + quoteIf(t)
			last.kind = tokAtom
			continue
		}
		out = append(out, t)
	}
	return out
}

// joinable reports whether two tokens belong to one address word: touching
// tokens that continue a dotted local part or meet at the '@', and also
// blank-separated ones around the '@', which RFC 5322's obsolete syntax
// allows ("john @ example.com").
func joinable(a, b addrToken) bool {
	if a.kind == tokQuoted && b.kind == tokQuoted {
		return false
	}
	if strings.HasPrefix(b.text, "@") || strings.HasSuffix(a.text, "@") {
		return true
	}
	return !b.space && (strings.HasPrefix(b.text, ".") || strings.HasSuffix(a.text, "."))
}

// quoteIf re-adds the quotes of a quoted local part when it becomes part of
// an address word.
func quoteIf(t addrToken) string {
	if t.kind == tokQuoted {
		return `"` + t.text + `"`
	}
	return t.text
}

// nameOf builds a decoded display name from phrase tokens, or from comments
// when there is no phrase ("john@x (John Doe)").
func nameOf(phrase, comments []addrToken) string {
	var b strings.Builder
	for _, t := range phrase {
		if t.kind == tokComment {
			continue
		}
		if b.Len() > 0 && t.space {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	if b.Len() == 0 {
		for _, t := range comments {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(t.text)
		}
	}
	name := DecodeText(b.String())
	// Some clients wrap the name in single quotes: 'John Doe'.
	if len(name) >= 2 && name[0] == '\'' && name[len(name)-1] == '\'' {
		name = strings.TrimSpace(name[1 : len(name)-1])
	}
	return name
}

// cleanAddr normalises the written form of an address without changing its
// case: blanks and comments go, as do a "mailto:" prefix and a source route.
func cleanAddr(s string) string {
	s = stripComments(s)
	if !strings.Contains(s, `"`) {
		s = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, s)
	} else {
		s = strings.TrimSpace(s)
	}
	if len(s) >= 7 && strings.EqualFold(s[:7], "mailto:") {
		s = s[7:]
	}
	if strings.HasPrefix(s, "@") {
		// Source route "@relay1,@relay2:user@host".
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			s = s[i+1:]
		}
	}
	s = strings.Trim(s, "<>,;")
	if s == "" || s == "@" {
		return ""
	}
	return decodeRawString(s)
}
