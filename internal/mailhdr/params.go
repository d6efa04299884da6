package mailhdr

import (
	"sort"
	"strconv"
	"strings"
)

// ParseMediaType parses a Content-Type or Content-Disposition value into its
// lower-cased value ("text/plain", "attachment") and its parameters, keyed by
// lower-cased name. Unlike mime.ParseMediaType it never gives up on the whole
// field because of one bad parameter:
//
//   - values may be quoted, unquoted, unquoted with spaces ("name=my
//     scan.pdf"), or unterminated quotes (taken to the end of the field);
//   - RFC 2231 parameters ("filename*=utf-8'de'%C3%9C.pdf") and continuations
//     ("filename*0*=...; filename*1=...") are joined in order and converted
//     from their declared charset, which may be any charset DecodeCharset
//     knows; a parameter in RFC 2231 form wins over its plain form;
//   - comments in parentheses are removed from the value and from
//     parameter names, but not from parameter values;
//   - the first of repeated parameters wins;
//   - a missing semicolon after the value ("application/pdf name=x.pdf")
//     is tolerated.
//
// Plain values are returned as written (RFC 2047 words and raw 8-bit bytes
// included): only the caller knows which parameters are text, such as a file
// name, and which are tokens, such as a boundary, which must not be altered.
func ParseMediaType(raw string) (string, map[string]string) {
	s := unfold(raw)
	fields := splitParams(s)
	first := strings.Trim(stripComments(fields[0]), " \t\"'")
	rest := fields[1:]
	if i := strings.IndexAny(first, " \t"); i > 0 {
		// "application/pdf name=x.pdf": a missing semicolon. Keep the
		// type and read the remainder as a parameter.
		if tail := strings.TrimSpace(first[i:]); strings.Contains(tail, "=") {
			rest = append([]string{tail}, rest...)
		}
		first = first[:i]
	}
	value := strings.ToLower(first)
	params := make(map[string]string)
	ext := make(map[string]*extParam)
	for _, f := range rest {
		name, val, ok := splitParam(f)
		if !ok {
			continue
		}
		if base, idx, encoded, isExt := parseExtName(name); isExt {
			e := ext[base]
			if e == nil {
				e = &extParam{}
				ext[base] = e
			}
			e.add(idx, encoded, val)
			continue
		}
		if _, dup := params[name]; !dup {
			params[name] = val
		}
	}
	for name, e := range ext {
		params[name] = e.decode()
	}
	return value, params
}

// splitParams splits a field at the semicolons that are outside quotes.
func splitParams(s string) []string {
	scanned(len(s))
	var out []string
	start, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ';':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// splitParam splits "name = value" and unquotes the value.
func splitParam(f string) (name, val string, ok bool) {
	eq := indexByte(f, '=')
	if eq < 0 {
		return "", "", false
	}
	name = strings.ToLower(strings.TrimSpace(stripComments(f[:eq])))
	if name == "" || strings.ContainsAny(name, " \t\"") {
		return "", "", false
	}
	v := strings.TrimLeft(f[eq+1:], " \t")
	if strings.HasPrefix(v, "\"") {
		return name, unquote(v[1:]), true
	}
	// Comments are not removed from unquoted values: a parenthesis in a
	// value is far more often part of a file name ("scan (1).pdf") than an
	// RFC 822 comment.
	return name, strings.Trim(v, " \t"), true
}

// unquote reads a quoted-string body (after the opening quote) up to the
// closing quote or, if there is none, to the end, resolving backslash
// escapes. A backslash before anything but a quote or a backslash is kept:
// Windows paths in file names ("C:\temp\a.pdf") arrive unescaped.
func unquote(s string) string {
	var b strings.Builder
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			break
		}
		if c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
			i++
			c = s[i]
		}
		b.WriteByte(c)
	}
	scanned(i)
	return b.String()
}

// stripComments removes RFC 822 comments outside quoted strings.
func stripComments(s string) string {
	if !contains(s, "(") {
		return s
	}
	scanned(len(s))
	var b strings.Builder
	depth, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' && depth == 0:
			inQuote = !inQuote
		case c == '(' && !inQuote:
			depth++
			continue
		case c == ')' && !inQuote && depth > 0:
			depth--
			continue
		}
		if depth == 0 {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// parseExtName recognises RFC 2231 names: "name*" (one encoded value),
// "name*N" (a plain segment) and "name*N*" (an encoded segment).
func parseExtName(name string) (base string, idx int, encoded, ok bool) {
	star := strings.IndexByte(name, '*')
	if star <= 0 {
		return "", 0, false, false
	}
	base, rest := name[:star], name[star+1:]
	if rest == "" {
		return base, 0, true, true
	}
	encoded = strings.HasSuffix(rest, "*")
	rest = strings.TrimSuffix(rest, "*")
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n > 9999 {
		return "", 0, false, false
	}
	return base, n, encoded, true
}

// extParam gathers the segments of one RFC 2231 parameter.
type extParam struct {
	segs []extSeg
	seen map[int]bool
}

type extSeg struct {
	idx     int
	encoded bool
	val     string
}

func (e *extParam) add(idx int, encoded bool, val string) {
	if e.seen == nil {
		e.seen = make(map[int]bool)
	}
	if e.seen[idx] {
		return // first wins, as for plain parameters
	}
	e.seen[idx] = true
	e.segs = append(e.segs, extSeg{idx, encoded, val})
}

// decode joins the segments in index order, percent-decodes the encoded
// ones and converts the bytes from the charset named by the first segment.
// Gaps in the numbering are tolerated rather than truncating the value.
func (e *extParam) decode() string {
	sort.Slice(e.segs, func(i, j int) bool { return e.segs[i].idx < e.segs[j].idx })
	var charset string
	var b []byte
	for i, s := range e.segs {
		v := s.val
		if s.encoded && i == 0 {
			// charset'language'value; a value without the two quotes is
			// taken as percent-encoded text of unknown charset.
			if p := strings.IndexByte(v, '\''); p >= 0 {
				if q := strings.IndexByte(v[p+1:], '\''); q >= 0 {
					charset, v = v[:p], v[p+1+q+1:]
				}
			}
		}
		if s.encoded {
			b = appendPercent(b, v)
		} else {
			b = append(b, v...)
		}
	}
	str, _ := DecodeCharset(charset, b)
	return str
}

// appendPercent decodes %XX escapes; a "%" not followed by two hex digits is
// kept literally.
func appendPercent(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}
