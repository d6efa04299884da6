package mailhdr

import (
	"strings"
	"unicode/utf16"
)

// decodeUTF7 decodes RFC 2152 UTF-7, which old Exchange and Outlook Express
// versions emitted and x/text does not support. "+" opens a section of
// modified base64 holding UTF-16 code units, "+-" is a literal "+", and any
// character outside the base64 alphabet closes the section (a closing "-" is
// absorbed). Bytes outside ASCII are not UTF-7; they are kept through the
// 8-bit fallback rather than dropped.
func decodeUTF7(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	i := 0
	for i < len(b) {
		c := b[i]
		if c != '+' {
			if c < 0x80 {
				sb.WriteByte(c)
			} else {
				sb.WriteRune(win1252[c])
			}
			i++
			continue
		}
		i++
		if i < len(b) && b[i] == '-' {
			sb.WriteByte('+')
			i++
			continue
		}
		var units []uint16
		var acc uint32
		bits := 0
		for i < len(b) {
			v := b64Value(b[i])
			if v < 0 {
				break
			}
			acc = acc<<6 | uint32(v)
			bits += 6
			if bits >= 16 {
				bits -= 16
				units = append(units, uint16(acc>>uint(bits)))
				acc &= 1<<uint(bits) - 1
			}
			i++
		}
		sb.WriteString(string(utf16.Decode(units)))
		if i < len(b) && b[i] == '-' {
			i++
		}
	}
	return sb.String()
}

// b64Value returns the value of a standard base64 alphabet character, or -1.
func b64Value(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}
