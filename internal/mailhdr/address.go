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
// "root", and writes "From: root (Cron Daemon)"); Qualify gives it a domain. The error is ErrNoAddress, and only when the field is not blank,
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
	comments := 0
	for _, t := range seg {
		if t.kind == tokComment {
			comments++
		}
	}
	if len(seg) == comments {
		return // nothing, or only a comment ("undisclosed:; (no To-header)")
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
	// An RFC 2047 encoded word is a display name that lost its address
	// ("Reply-To: =?utf-8?q?Support?="), never a local address.
	if len(words) == 1 && words[0].kind == tokAtom && !isEncodedWord(words[0].text) {
		if a := cleanAddr(words[0].text); a != "" {
			// cron writes "root (Cron Daemon)": the comment is the name.
			var comments []addrToken
			for _, t := range p.pending {
				if t.kind == tokComment {
					comments = append(comments, t)
				}
			}
			p.out = append(p.out, Address{Name: nameOf(nil, comments), Address: a})
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

// isEncodedWord reports whether w has the shape of an RFC 2047 encoded
// word, =?charset?encoding?text?=.
func isEncodedWord(w string) bool {
	return len(w) >= 8 && strings.HasPrefix(w, "=?") && strings.HasSuffix(w, "?=") && strings.Count(w, "?") >= 4
}
