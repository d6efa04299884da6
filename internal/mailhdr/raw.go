package mailhdr

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// win1252 maps every byte to a rune. x/text decodes the five bytes that
// Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) to U+FFFD;
// here they map to the C1 code points of the same value, as the WHATWG index
// does, so that the fallback is lossless: every input byte stays visible.
var win1252 = func() (t [256]rune) {
	for i := range t {
		r := charmap.Windows1252.DecodeByte(byte(i))
		if r == utf8.RuneError {
			r = rune(i)
		}
		t[i] = r
	}
	return t
}()

// decodeRaw reads bytes of unknown charset: every sequence that is valid
// UTF-8 is kept as UTF-8 and every other byte is read as Windows-1252. Whole
// strings are usually one or the other, but subjects pasted together from
// two sources mix them, and this rule gets both halves right.
func decodeRaw(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return decodeRawString(string(b))
}

// decodeRawString is decodeRaw for a string.
func decodeRawString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			sb.WriteRune(win1252[s[i]])
			i++
			continue
		}
		sb.WriteString(s[i : i+n])
		i += n
	}
	return sb.String()
}
