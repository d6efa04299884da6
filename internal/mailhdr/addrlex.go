package mailhdr

import "strings"

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
			if end := indexByte(s[i+1:], '>'); end >= 0 {
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
			scanned(j - i)
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
			scanned(i + 1)
			return b.String(), i + 1, true
		default:
			b.WriteByte(s[i])
		}
	}
	scanned(len(s))
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
				scanned(i + 1)
				return b.String(), i + 1, true
			}
		}
		b.WriteByte(s[i])
	}
	scanned(len(s))
	return "", 0, false
}
