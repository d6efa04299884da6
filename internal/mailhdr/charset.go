package mailhdr

import (
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// DecodeCharset converts b from the charset named by label to UTF-8. It
// reports whether the label was recognised; when it was not (unknown, empty
// or bogus labels such as "charset" or "fakescii"), the bytes are read as
// UTF-8 where valid and Windows-1252 elsewhere. DecodeCharset never fails and
// never drops text: bytes that are invalid in a recognised charset become
// U+FFFD, everything else is converted.
//
// Lookup order: UTF-8/US-ASCII and the Unicode encodings are handled here,
// then the WHATWG index (htmlindex, which maps iso-8859-1 and us-ascii
// labels to Windows-1252, matching what senders mean), then the IANA MIME
// and IANA indexes, then aliases that mailers emit but neither index knows.
func DecodeCharset(label string, b []byte) (string, bool) {
	name := normalizeLabel(label)
	if name == "" {
		return decodeRaw(b), false
	}
	if asciiLabels[name] {
		return decodeRaw(trimUTF8BOM(b)), true
	}
	if s, ok := decodeUnicode(name, b); ok {
		return s, true
	}
	enc := lookupEncoding(name)
	if enc == nil {
		return decodeRaw(b), false
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		// x/text decoders replace invalid input rather than fail, so this
		// is a defect in a decoder; keep the text readable regardless.
		return decodeRaw(b), true
	}
	return string(out), true
}

// KnownCharset reports whether DecodeCharset recognises label.
func KnownCharset(label string) bool {
	name := normalizeLabel(label)
	switch {
	case name == "":
		return false
	case asciiLabels[name], unicodeLabel(name):
		return true
	}
	return lookupEncoding(name) != nil
}

// normalizeLabel lower-cases a charset label and removes what wraps it in
// the wild: quotes, spaces, and an RFC 2231 language suffix ("utf-8*en").
func normalizeLabel(label string) string {
	s := strings.TrimSpace(label)
	s = strings.Trim(s, "\"' \t")
	if i := strings.IndexByte(s, '*'); i >= 0 {
		s = s[:i]
	}
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) > 64 { // no real label is this long; do not look it up
		return ""
	}
	return s
}

// asciiLabels are read as UTF-8 with the Windows-1252 fallback. US-ASCII
// text that contains 8-bit bytes is, in practice, undeclared UTF-8 or
// Windows-1252, never something else.
var asciiLabels = map[string]bool{
	"utf-8": true, "utf8": true, "utf_8": true, "x-utf_8j": true, "unicode-1-1-utf-8": true,
	"us-ascii": true, "ascii": true, "us": true, "ansi_x3.4-1968": true, "iso646-us": true,
	"iso-ir-6": true, "cp367": true, "ibm367": true, "csascii": true, "iso_646.irv:1991": true,
}

// aliases covers labels that real mail uses and that neither x/text index
// resolves to a usable decoder.
var aliases = map[string]string{
	"cp932":            "shift_jis",
	"x-ms-cp932":       "shift_jis",
	"sjis-open":        "shift_jis",
	"sjis-win":         "shift_jis",
	"cp949":            "euc-kr",
	"uhc":              "euc-kr",
	"ks_c_5601":        "euc-kr",
	"x-windows-949":    "euc-kr",
	"euc-cn":           "gbk",
	"x-euc-cn":         "gbk",
	"cp936":            "gbk",
	"gb18030-2000":     "gb18030",
	"iso-2022-jp-1":    "iso-2022-jp",
	"iso-2022-jp-2":    "iso-2022-jp",
	"iso-2022-jp-3":    "iso-2022-jp",
	"cp50220":          "iso-2022-jp",
	"cp50221":          "iso-2022-jp",
	"x-euc":            "euc-jp",
	"eucjp-ms":         "euc-jp",
	"cp51932":          "euc-jp",
	"big5hkscs":        "big5",
	"cp950":            "big5",
	"x-x-big5":         "big5",
	"ansi_x3.110-1983": "iso-8859-1",
	"latin-1":          "iso-8859-1",
}

// lookupEncoding finds a usable decoder for a normalised label, or nil.
func lookupEncoding(name string) encoding.Encoding {
	for _, cand := range labelVariants(name) {
		if a, ok := aliases[cand]; ok {
			cand = a
		}
		if enc := indexLookup(cand); enc != nil {
			return enc
		}
	}
	return nil
}

// indexLookup asks htmlindex, then the IANA indexes. htmlindex maps some
// labels (iso-2022-kr, hz-gb-2312) to the "replacement" encoding, which turns
// the whole text into one U+FFFD; that is worse than any fallback, so it is
// skipped.
func indexLookup(name string) encoding.Encoding {
	if enc, err := htmlindex.Get(name); err == nil && enc != nil && enc != encoding.Replacement {
		return enc
	}
	for _, idx := range []*ianaindex.Index{ianaindex.MIME, ianaindex.IANA} {
		if enc, err := idx.Encoding(name); err == nil && enc != nil && enc != encoding.Replacement {
			return enc
		}
	}
	return nil
}

// labelVariants returns name and spellings that mailers produce for the
// same charset: "iso8859_1" and "iso_8859-1" for iso-8859-1, "windows1252"
// and "cp-1252" for windows-1252, an "x-" or "cs" prefix, and "win-1251".
func labelVariants(name string) []string {
	out := []string{name}
	add := func(s string) {
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	base := strings.TrimPrefix(strings.TrimPrefix(name, "x-"), "cs")
	add(base)
	dashed := strings.ReplaceAll(base, "_", "-")
	add(dashed)
	for _, p := range []string{"iso-8859-", "iso8859-", "iso8859", "iso-8859"} {
		if rest, ok := strings.CutPrefix(dashed, p); ok && rest != "" {
			add("iso-8859-" + strings.TrimPrefix(rest, "-"))
		}
	}
	for _, p := range []string{"windows", "win", "cp", "ms", "ansi"} {
		if rest, ok := strings.CutPrefix(dashed, p); ok {
			rest = strings.TrimPrefix(rest, "-")
			if len(rest) == 4 && strings.HasPrefix(rest, "125") {
				add("windows-" + rest)
			}
		}
	}
	return out
}

func trimUTF8BOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return b[3:]
	}
	return b
}
