package convert

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// transferEncoding is a normalised Content-Transfer-Encoding.
type transferEncoding int

const (
	cteIdentity transferEncoding = iota // 7bit, 8bit, binary, absent
	cteBase64
	cteQP
	cteUU
	cteUnknown
)

// cteSeparators is built once: a Replacer builds its lookup table on first
// use, which per message cost more than the replacement itself.
var cteSeparators = strings.NewReplacer("-", "", "_", "", " ", "")

// parseCTE normalises a Content-Transfer-Encoding value. Spellings seen in
// real mail ("7-bit", "8", "Base64 ", "quoted_printable", "x-uuencode") map
// to the encoding they mean; anything else is cteUnknown, which callers
// treat as 8bit.
func parseCTE(raw string) transferEncoding {
	v, _ := mailhdr.ParseMediaType(raw)
	v = cteSeparators.Replace(v)
	switch v {
	case "", "7bit", "8bit", "7", "8", "binary", "none", "xbinary", "7bits", "8bits":
		return cteIdentity
	case "base64", "xbase64", "b64":
		return cteBase64
	case "quotedprintable", "xquotedprintable", "qp":
		return cteQP
	case "xuuencode", "uuencode", "xuue", "uue":
		return cteUU
	}
	return cteUnknown
}

// decodeTransfer decodes a body according to its transfer encoding. It never
// fails: undecodable input yields what could be decoded plus a warning.
func decodeTransfer(raw string, body []byte) ([]byte, string) {
	switch parseCTE(raw) {
	case cteBase64:
		return decodeBase64(body)
	case cteQP:
		return decodeQP(body), ""
	case cteUU:
		if out, ok := decodeUU(body); ok {
			return out, ""
		}
		return body, "uuencoded body without a begin line; kept as is"
	case cteUnknown:
		return body, fmt.Sprintf("unknown transfer encoding %.40q; read as 8bit", strings.TrimSpace(raw))
	}
	return body, ""
}

// b64 maps a byte to its base64 value, 0xFE for '=', 0xFF for anything else.
var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	t['='] = 0xFE
	return t
}()

// decodeBase64 decodes base64 leniently. Whitespace and line breaks are
// skipped; other characters outside the alphabet are skipped with a warning;
// "=" ends a quantum and decoding resumes after it (bodies that concatenate
// separately encoded chunks); a final partial quantum yields the whole bytes
// it holds. A message cut short by a client therefore still delivers every
// complete byte of the attachment.
func decodeBase64(src []byte) ([]byte, string) {
	var d b64Decoder
	dst := d.decode(make([]byte, 0, len(src)*3/4+3), src)
	return d.finish(dst)
}

// b64Decoder is decodeBase64's state machine, kept between calls so that a
// deferred attachment can be decoded block by block from the spooled
// message (see Deferred) with exactly the bytes decodeBase64 would give.
type b64Decoder struct {
	acc  uint32
	n    int // sextets in acc
	junk int // characters skipped that are neither base64 nor blanks
}

// decode appends the bytes that src completes to dst.
func (d *b64Decoder) decode(dst, src []byte) []byte {
	for _, c := range src {
		v := b64[c]
		switch {
		case v < 64:
			d.acc = d.acc<<6 | uint32(v)
			d.n++
			if d.n == 4 {
				dst = append(dst, byte(d.acc>>16), byte(d.acc>>8), byte(d.acc))
				d.acc, d.n = 0, 0
			}
		case v == 0xFE:
			dst = flushQuantum(dst, d.acc, d.n)
			d.acc, d.n = 0, 0
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			d.junk++
		}
	}
	return dst
}

// finish appends the whole bytes of a final partial quantum and returns the
// warning the input deserves, if any.
func (d *b64Decoder) finish(dst []byte) ([]byte, string) {
	var warn string
	switch {
	case d.n == 1:
		warn = "truncated base64: final partial byte dropped"
	case d.junk > 0:
		warn = fmt.Sprintf("base64 body with %d invalid characters skipped", d.junk)
	}
	dst = flushQuantum(dst, d.acc, d.n)
	d.acc, d.n = 0, 0
	return dst, warn
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

// decodeQP decodes quoted-printable leniently: "=XX" in either case is a
// byte, "=" at the end of a line (after trailing blanks) is a soft break,
// any other "=" is kept literally, and trailing blanks on a line are removed
// as RFC 2045 §6.7 asks. Line breaks keep the form they had (CRLF or LF).
func decodeQP(src []byte) []byte {
	dst := make([]byte, 0, len(src))
	for i := 0; i < len(src); {
		next := lineEnd(src, i)
		line := src[i:next]
		eol := line[len(trimEOL(line)):]
		line = bytes.TrimRight(trimEOL(line), " \t")
		soft := bytes.HasSuffix(line, []byte("="))
		if soft {
			line = line[:len(line)-1]
		}
		for j := 0; j < len(line); j++ {
			c := line[j]
			if c == '=' && j+2 < len(line) && isHex(line[j+1]) && isHex(line[j+2]) {
				dst = append(dst, unhex(line[j+1])<<4|unhex(line[j+2]))
				j += 2
				continue
			}
			dst = append(dst, c)
		}
		if !soft {
			dst = append(dst, eol...)
		}
		i = next
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

// decodeUU decodes a uuencoded body ("begin mode name" ... "end"). It reports
// false when there is no begin line.
func decodeUU(src []byte) ([]byte, bool) {
	i := 0
	for ; i < len(src); i = lineEnd(src, i) {
		if bytes.HasPrefix(src[i:], []byte("begin ")) {
			break
		}
	}
	if i >= len(src) {
		return nil, false
	}
	dst := make([]byte, 0, len(src)*3/4)
	for i = lineEnd(src, i); i < len(src); i = lineEnd(src, i) {
		line := trimEOL(src[i:lineEnd(src, i)])
		if bytes.Equal(line, []byte("end")) {
			break
		}
		if len(line) == 0 || line[0] == '`' {
			continue // an empty data line
		}
		n := int((line[0] - ' ') & 63)
		var buf []byte
		for j := 1; j < len(line) && len(buf) < n; j += 4 {
			var q [4]byte
			for k := 0; k < 4; k++ {
				if j+k < len(line) {
					q[k] = (line[j+k] - ' ') & 63
				}
			}
			buf = append(buf, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2, q[2]<<6|q[3])
		}
		if len(buf) > n {
			buf = buf[:n]
		}
		dst = append(dst, buf...)
	}
	return dst, true
}
