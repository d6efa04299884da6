package mailhdr

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// unicodeLabel reports whether name is a UTF-7/16/32 label handled by
// decodeUnicode.
func unicodeLabel(name string) bool {
	switch name {
	case "utf-7", "utf7", "unicode-1-1-utf-7", "csunicode11utf7", "x-unicode-2-0-utf-7",
		"utf-16", "utf16", "ucs-2", "ucs2", "iso-10646-ucs-2", "csunicode", "unicode",
		"utf-16le", "utf16le", "ucs-2le", "unicodefeff",
		"utf-16be", "utf16be", "ucs-2be", "unicodefffe",
		"utf-32", "utf32", "ucs-4", "iso-10646-ucs-4", "utf-32le", "utf-32be":
		return true
	}
	return false
}

// decodeUnicode handles the Unicode transformation formats. The x/text
// indexes disagree about unmarked UTF-16 (WHATWG says little-endian, IANA
// big-endian), so the byte order is taken from a BOM when there is one and
// otherwise guessed from where the zero bytes of ASCII characters fall.
func decodeUnicode(name string, b []byte) (string, bool) {
	if !unicodeLabel(name) {
		return "", false
	}
	switch name {
	case "utf-7", "utf7", "unicode-1-1-utf-7", "csunicode11utf7", "x-unicode-2-0-utf-7":
		return decodeUTF7(b), true
	case "utf-32", "utf32", "ucs-4", "iso-10646-ucs-4", "utf-32le", "utf-32be":
		return decodeUTF32(name, b), true
	}
	var order unicode.Endianness
	switch {
	case len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF:
		order, b = unicode.BigEndian, b[2:]
	case len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE:
		order, b = unicode.LittleEndian, b[2:]
	case strings.HasSuffix(name, "le") || name == "unicodefeff" || name == "unicode":
		order = unicode.LittleEndian
	case strings.HasSuffix(name, "be") || name == "unicodefffe":
		order = unicode.BigEndian
	default:
		order = guessUTF16Order(b)
	}
	return decodeWith(unicode.UTF16(order, unicode.IgnoreBOM), b), true
}

// guessUTF16Order looks at the first bytes: Latin text in UTF-16BE has its
// zero bytes at even offsets, in UTF-16LE at odd ones. Without evidence it
// returns big-endian, the RFC 2781 default.
func guessUTF16Order(b []byte) unicode.Endianness {
	even, odd := 0, 0
	for i := 0; i < len(b) && i < 512; i++ {
		if b[i] == 0 {
			if i%2 == 0 {
				even++
			} else {
				odd++
			}
		}
	}
	if odd > even {
		return unicode.LittleEndian
	}
	return unicode.BigEndian
}

func decodeUTF32(name string, b []byte) string {
	order := utf32.BigEndian
	switch {
	case len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0xFE && b[3] == 0xFF:
		b = b[4:]
	case len(b) >= 4 && b[0] == 0xFF && b[1] == 0xFE && b[2] == 0 && b[3] == 0:
		order, b = utf32.LittleEndian, b[4:]
	case strings.HasSuffix(name, "le"):
		order = utf32.LittleEndian
	case strings.HasSuffix(name, "be"):
	default:
		if len(b) >= 4 && b[0] != 0 && b[3] == 0 {
			order = utf32.LittleEndian
		}
	}
	return decodeWith(utf32.UTF32(order, utf32.IgnoreBOM), b)
}

// decodeWith runs a decoder and keeps whatever it produced. A dangling odd
// byte at the end of UTF-16 becomes U+FFFD rather than disappearing.
func decodeWith(enc encoding.Encoding, b []byte) string {
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return decodeRaw(b)
	}
	s := string(out)
	if !utf8.ValidString(s) {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}
