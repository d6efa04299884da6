package convert

import (
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// attachmentName decodes the name the sender gave an attachment, or makes
// one up from its type. Sources, in order: the Content-Disposition
// filename (RFC 2231 form first, then plain), the Content-Type name (same),
// and for an attached message its Subject. Each may hold RFC 2047 words,
// also inside quotes as many mailers and scanners write them, or raw 8-bit
// text.
func (c *converter) attachmentName(e *entity, n int) string {
	_, dparams := mailhdr.ParseMediaType(e.header.Get("Content-Disposition"))
	for _, raw := range []string{dparams["filename"], e.params["name"]} {
		if name := sanitizeName(mailhdr.DecodeText(contentBreaks(raw))); name != "" {
			return name
		}
	}
	if isMessage(e.mediaType) {
		if subj := c.nestedSubject(e); subj != "" {
			return sanitizeName(truncateUTF16(subj, maxNameUTF16-4) + ".eml")
		}
	}
	return generatedName(e.mediaType, n)
}

// contentBreaks turns the line breaks that are part of a parameter's value
// (an RFC 2231 "%0A", say) into blanks, before header decoding would
// delete them as folding and glue the words on either side together. A
// break followed by a blank is folding and is left for the decoder.
func contentBreaks(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\r' && c != '\n' {
			b.WriteByte(c)
			continue
		}
		j := i
		if c == '\r' && j+1 < len(s) && s[j+1] == '\n' {
			j++
		}
		if j+1 < len(s) && (s[j+1] == ' ' || s[j+1] == '\t') {
			b.WriteString(s[i : j+1])
		} else {
			b.WriteByte(' ')
		}
		i = j
	}
	return b.String()
}

func isMessage(mt string) bool {
	return mt == "message/rfc822" || mt == "message/global"
}

// nestedSubject reads the Subject of an attached message, so that a
// forwarded message arrives named after its subject as Outlook names it.
func (c *converter) nestedSubject(e *entity) string {
	hr := readHeader(c.decoded(e), false, c.opts.MaxHeaderBytes)
	if hr.tooBig {
		return ""
	}
	return sanitizeLine(mailhdr.DecodeText(hr.header.Get("Subject")))
}

// sanitizeName makes a file name safe for Graph and for the recipient's
// file system while keeping its Unicode: a full path is reduced to its
// last element (old Windows mailers send "C:\TEMP\scan.pdf"), remaining
// path separators become "_", tabs and line breaks become blanks, other
// control characters and the bidirectional
// overrides used to disguise extensions ("gpj.exe" shown as "exe.jpg") are
// removed, and the name is cut to 255 UTF-16 units keeping its extension.
func sanitizeName(s string) string {
	s = strings.TrimSpace(s)
	if isAbsPath(s) {
		s = s[strings.LastIndexAny(s, `/\`)+1:]
	}
	// A line break inside a name (a folded header that was not unfolded,
	// an encoded word holding CRLF) separates words, so it becomes a blank
	// rather than gluing them together.
	s = strings.ReplaceAll(s, "\r\n", " ")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\':
			return '_'
		case r == '\t' || r == '\r' || r == '\n':
			return ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0), r == 0xFFFE, r == 0xFFFF:
			return -1
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "." || s == ".." {
		return ""
	}
	if utf16Len(s) <= maxNameUTF16 {
		return s
	}
	ext := ""
	if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i <= 16 && !strings.ContainsAny(s[i:], " ") {
		ext = s[i:]
	}
	return truncateUTF16(s[:len(s)-len(ext)], maxNameUTF16-utf16Len(ext)) + ext
}

// isAbsPath recognises "C:\dir\f", "C:/dir/f", "\\server\share\f", "/dir/f".
func isAbsPath(s string) bool {
	if len(s) >= 3 && s[1] == ':' && (s[2] == '\\' || s[2] == '/') {
		return true
	}
	return strings.HasPrefix(s, `\\`) || strings.HasPrefix(s, "/")
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// truncateUTF16 cuts s to at most max UTF-16 code units at a rune boundary.
func truncateUTF16(s string, max int) string {
	n := 0
	for i, r := range s {
		n += utf16.RuneLen(r)
		if n > max {
			return s[:i]
		}
	}
	return s
}

// wellKnownNames are the names clients expect for parts that usually come
// without one.
var wellKnownNames = map[string]string{
	"application/ms-tnef":              "winmail.dat",
	"application/vnd.ms-tnef":          "winmail.dat",
	"application/pkcs7-signature":      "smime.p7s",
	"application/x-pkcs7-signature":    "smime.p7s",
	"application/pkcs7-mime":           "smime.p7m",
	"application/x-pkcs7-mime":         "smime.p7m",
	"application/pgp-signature":        "signature.asc",
	"application/pgp-encrypted":        "pgp-encrypted.asc",
	"message/delivery-status":          "delivery-status.txt",
	"message/global-delivery-status":   "delivery-status.txt",
	"message/disposition-notification": "disposition-notification.txt",
}

// extensions maps media types to file extensions for generated names.
var extensions = map[string]string{
	"application/pdf":               ".pdf",
	"application/zip":               ".zip",
	"application/gzip":              ".gz",
	"application/x-gzip":            ".gz",
	"application/json":              ".json",
	"application/xml":               ".xml",
	"application/rtf":               ".rtf",
	"application/msword":            ".doc",
	"application/vnd.ms-excel":      ".xls",
	"application/vnd.ms-powerpoint": ".ppt",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   ".docx",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         ".xlsx",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
	"application/postscript":           ".ps",
	"application/ics":                  ".ics",
	"application/pgp-keys":             ".asc",
	"application/octet-stream":         ".bin",
	"image/png":                        ".png",
	"image/jpeg":                       ".jpg",
	"image/jpg":                        ".jpg",
	"image/pjpeg":                      ".jpg",
	"image/gif":                        ".gif",
	"image/bmp":                        ".bmp",
	"image/tiff":                       ".tif",
	"image/webp":                       ".webp",
	"image/svg+xml":                    ".svg",
	"image/x-icon":                     ".ico",
	"image/heic":                       ".heic",
	"audio/mpeg":                       ".mp3",
	"audio/wav":                        ".wav",
	"audio/x-wav":                      ".wav",
	"audio/ogg":                        ".ogg",
	"video/mp4":                        ".mp4",
	"video/mpeg":                       ".mpeg",
	"video/quicktime":                  ".mov",
	"text/plain":                       ".txt",
	"text/html":                        ".html",
	"text/csv":                         ".csv",
	"text/calendar":                    ".ics",
	"text/xml":                         ".xml",
	"text/css":                         ".css",
	"text/vcard":                       ".vcf",
	"text/x-vcard":                     ".vcf",
	"text/enriched":                    ".txt",
	"text/rfc822-headers":              ".txt",
	"message/rfc822":                   ".eml",
	"message/global":                   ".eml",
	"message/partial":                  ".eml",
	"message/external-body":            ".txt",
	"message/global-headers":           ".txt",
	"message/feedback-report":          ".txt",
	"message/disposition-notification": ".txt",
}

// generatedName names an attachment that has no name: "image-2.png",
// "message-3.eml", "attachment-1.pdf", where the number is the
// attachment's position in the message.
func generatedName(mediaType string, n int) string {
	if name, ok := wellKnownNames[mediaType]; ok {
		return name
	}
	prefix := "attachment"
	switch {
	case strings.HasPrefix(mediaType, "image/"):
		prefix = "image"
	case isMessage(mediaType):
		prefix = "message"
	}
	ext, ok := extensions[mediaType]
	if !ok {
		ext = ".bin"
		if strings.HasPrefix(mediaType, "text/") {
			ext = ".txt"
		}
	}
	return prefix + "-" + itoa(n) + ext
}

func itoa(n int) string { return strconv.Itoa(n) }
