package convert

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// metaCharset finds the charset an HTML document declares for itself:
// <meta charset="x"> or <meta http-equiv="Content-Type" content="...;
// charset=x">. Only the start of the document is searched, as browsers do.
var metaCharset = regexp.MustCompile(`(?i)<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_:.+-]+)`)

const metaSniffBytes = 4096

// textOf decodes a text part to UTF-8: transfer encoding, then charset.
// The charset comes from the Content-Type parameter; an HTML part without a
// usable one uses its <meta> declaration. Unknown charsets fall back to
// UTF-8/Windows-1252 (mailhdr.DecodeCharset) with a warning: the body is
// never dropped or rejected.
func (c *converter) textOf(e *entity) string {
	if e.didText {
		return e.text
	}
	data := c.decoded(e)
	label := e.params["charset"]
	if e.mediaType == "text/html" && !mailhdr.KnownCharset(label) {
		if m := metaCharset.FindSubmatch(data[:min(len(data), metaSniffBytes)]); m != nil && mailhdr.KnownCharset(string(m[1])) {
			label = string(m[1])
		}
	}
	s, known := mailhdr.DecodeCharset(label, data)
	if !known && strings.TrimSpace(label) != "" {
		c.warn("unknown charset %.40q; read as UTF-8/Windows-1252", label)
	}
	switch {
	case e.mediaType == "text/html":
		s = declareUTF8(s)
	case e.mediaType == "text/plain" && strings.EqualFold(e.params["format"], "flowed"):
		s = unflow(s, strings.EqualFold(e.params["delsp"], "yes"))
	}
	e.text, e.didText = sanitizeBody(s), true
	return e.text
}

// declareUTF8 rewrites an HTML <meta> charset declaration to utf-8. The
// body goes to Graph as Unicode text, so a leftover "charset=iso-8859-1"
// would tell Exchange or a client to reinterpret it, producing mojibake.
func declareUTF8(s string) string {
	head := s[:min(len(s), metaSniffBytes)]
	loc := metaCharset.FindStringSubmatchIndex(head)
	if loc == nil || strings.EqualFold(head[loc[2]:loc[3]], "utf-8") {
		return s
	}
	return s[:loc[2]] + "utf-8" + s[loc[3]:]
}

// sanitizeBody makes text storable by Exchange, whose XML-based stores
// refuse characters that XML 1.0 forbids (EWS answers "The invalid value
// was specified for the 'Body' element" for FS/GS/RS/US, and 500 for
// U+FFFF; see OfficeDev/ews-managed-api#77 and ews-java-api#490). NUL is
// removed, form feed and vertical tab become line breaks, and every other
// forbidden character becomes U+FFFD, so the text stays visible.
func sanitizeBody(s string) string {
	if !needsSanitizing(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == 0:
		case r == '\f' || r == '\v':
			b.WriteByte('\n')
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0xFFFE, r == 0xFFFF:
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func needsSanitizing(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return true
		}
		// U+FFFE and U+FFFF are EF BF BE / EF BF BF; invalid UTF-8 is
		// also rewritten (as U+FFFD) by the range loop.
		if c == 0xEF && i+2 < len(s) && s[i+1] == 0xBF && (s[i+2] == 0xBE || s[i+2] == 0xBF) {
			return true
		}
	}
	return !utf8.ValidString(s)
}

// sanitizeLine prepares a one-line value (subject, display name, header
// value): every control character becomes a space, runs of blanks are kept
// as written, and the ends are trimmed.
func sanitizeLine(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == 0:
			return -1
		case r < 0x20 || r == 0x7f || r == 0xFFFE || r == 0xFFFF:
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
