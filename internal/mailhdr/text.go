package mailhdr

import (
	"strings"
)

// DecodeText decodes an unstructured header value (Subject, a display name,
// a file name): it unfolds the value, decodes RFC 2047 encoded words in any
// charset, and reads raw 8-bit bytes as UTF-8 where valid and Windows-1252
// elsewhere. Leading and trailing blanks are removed. DecodeText never fails;
// what it cannot decode it returns as written.
//
// Tolerated defects, all seen in real mail:
//   - a missing "?=" terminator (the word then ends at the next blank);
//   - encoded words glued to surrounding text ("Re:=?utf-8?q?x?=");
//   - blanks inside Q-encoded text;
//   - adjacent encoded words, which RFC 2047 §6.2 joins without the blanks
//     between them, whose bytes are joined before charset conversion so that
//     a multibyte character or a base64 quantum split across two words
//     survives;
//   - an RFC 2231 language suffix on the charset ("=?utf-8*en?q?...?=").
func DecodeText(raw string) string {
	s := unfold(raw)
	var out strings.Builder
	out.Grow(len(s))
	var g wordGroup
	lit := 0   // start of the literal text not yet written
	term := -1 // index of the next "?=" at or after the current word, cached
	for i := 0; i < len(s); {
		j := index(s[i:], "=?")
		if j < 0 {
			break
		}
		pos := i + j
		w, end, ok := parseWord(s, pos, &term)
		if !ok {
			i = pos + 2
			continue
		}
		between := s[lit:pos]
		if !g.empty() && isBlank(between) {
			// RFC 2047 §6.2: blanks between encoded words are not text.
		} else {
			g.flush(&out)
			out.WriteString(decodeRawString(between))
		}
		if !g.accepts(w) {
			g.flush(&out)
		}
		g.add(w)
		i, lit = end, end
	}
	g.flush(&out)
	out.WriteString(decodeRawString(s[lit:]))
	return strings.Trim(out.String(), " \t")
}

// unfold removes the line breaks of a folded header value. RFC 5322 unfolding
// removes CRLF (or a bare LF) before whitespace. A lone CR is an old Mac
// line break or noise between words, so it becomes a space.
func unfold(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return unfolder.Replace(s)
}

var unfolder = strings.NewReplacer("\r\n", "", "\n", "", "\r", " ")

func isBlank(s string) bool {
	return strings.Trim(s, " \t") == ""
}

// word is one encoded word: its charset label, 'B' or 'Q', and its text.
type word struct {
	charset string
	enc     byte
	text    string
}

// parseWord parses the encoded word that starts at s[pos] ("=?"). It returns
// the word, the index just past it, and false when s[pos:] is not an encoded
// word after all. term caches the position of the next "?=" so that a value
// with many unterminated words is still scanned in linear time.
func parseWord(s string, pos int, term *int) (word, int, bool) {
	p := pos + 2
	q := indexByte(s[p:], '?')
	if q < 0 || q > 64 {
		return word{}, 0, false
	}
	cs := s[p : p+q]
	if strings.ContainsAny(cs, " \t=()<>@,;:\"/[]") {
		return word{}, 0, false
	}
	p += q + 1
	if p+1 >= len(s) || s[p+1] != '?' {
		return word{}, 0, false
	}
	enc := s[p] &^ 0x20 // upper-case
	if enc != 'B' && enc != 'Q' {
		return word{}, 0, false
	}
	start := p + 2
	if *term < start {
		if k := index(s[start:], "?="); k >= 0 {
			*term = start + k
		} else {
			*term = len(s) + 1 // none left
		}
	}
	if *term <= len(s) {
		text := s[start:*term]
		if !contains(text, "=?") {
			return word{cs, enc, text}, *term + 2, true
		}
	}
	// Unterminated: the word runs to the next blank, or to the end.
	end := len(s)
	if k := indexAny(s[start:], " \t"); k >= 0 {
		end = start + k
	}
	return word{cs, enc, s[start:end]}, end, true
}

// wordGroup collects adjacent encoded words of one charset, so that their
// bytes are converted together.
type wordGroup struct {
	charset string
	bytes   []byte
	b64     []byte // base64 text not yet decoded
	n       int
}

func (g *wordGroup) empty() bool { return g.n == 0 }

func (g *wordGroup) accepts(w word) bool {
	return g.n == 0 || strings.EqualFold(normalizeLabel(g.charset), normalizeLabel(w.charset))
}

func (g *wordGroup) add(w word) {
	if g.n == 0 {
		g.charset = w.charset
	}
	g.n++
	if w.enc == 'B' {
		g.b64 = append(g.b64, w.text...)
		return
	}
	g.flushB64()
	g.bytes = appendQ(g.bytes, w.text)
}

func (g *wordGroup) flushB64() {
	if len(g.b64) > 0 {
		g.bytes = appendBase64(g.bytes, g.b64)
		g.b64 = g.b64[:0]
	}
}

func (g *wordGroup) flush(out *strings.Builder) {
	if g.n == 0 {
		return
	}
	g.flushB64()
	s, _ := DecodeCharset(g.charset, g.bytes)
	out.WriteString(s)
	g.bytes, g.b64, g.n, g.charset = g.bytes[:0], g.b64[:0], 0, ""
}

// appendQ decodes RFC 2047 "Q" text: "_" is a space, "=XX" a byte, and
// anything else (including a stray "=") is taken literally.
func appendQ(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			dst = append(dst, ' ')
		case c == '=' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendBase64 decodes base64 leniently: characters outside the alphabet are
// skipped, "=" padding ends a quantum and decoding restarts after it (words
// that were each padded and then concatenated), and a final partial quantum
// yields the bytes it holds.
func appendBase64(dst, src []byte) []byte {
	var acc uint32
	n := 0
	for _, c := range src {
		if c == '=' {
			dst = flushQuantum(dst, acc, n)
			acc, n = 0, 0
			continue
		}
		v := b64Value(c)
		if v < 0 {
			continue
		}
		acc = acc<<6 | uint32(v)
		n++
		if n == 4 {
			dst = append(dst, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, n = 0, 0
		}
	}
	return flushQuantum(dst, acc, n)
}

// flushQuantum emits the whole bytes held by n (0..3) pending sextets.
func flushQuantum(dst []byte, acc uint32, n int) []byte {
	switch n {
	case 2:
		dst = append(dst, byte(acc>>4))
	case 3:
		dst = append(dst, byte(acc>>10), byte(acc>>2))
	}
	return dst
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
