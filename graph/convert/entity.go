package convert

import (
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// entity is one node of the MIME tree. Byte slices point into the input
// buffer; nothing is decoded until the converter needs it.
type entity struct {
	header    textproto.Header
	raw       []byte // the entity as in the source, header included
	body      []byte // the body, still transfer-encoded
	mediaType string // lower-case "type/subtype", defaulted
	params    map[string]string
	children  []*entity

	// opaque is set for a subtree that was not parsed (depth or parts
	// limit, oversized part header); it is attached whole as an .eml file.
	opaque string

	// Set by body selection.
	dropped bool // a text alternative of the chosen body
	picked  bool // pick is valid
	pick    *entity

	// Decoding caches.
	decoded []byte
	didDec  bool
	text    string
	didText bool
}

func (e *entity) isMultipart() bool {
	return e.opaque == "" && strings.HasPrefix(e.mediaType, "multipart/")
}

// parser builds the entity tree and enforces the depth and parts limits.
type parser struct {
	opts  Options
	parts int
	warn  func(format string, args ...any)
}

// parse parses one entity. defType is the media type to assume without a
// Content-Type field: text/plain, or message/rfc822 inside multipart/digest.
func (p *parser) parse(raw []byte, depth int, defType string, top bool) *entity {
	p.parts++
	hr := readHeader(raw, top, p.opts.MaxHeaderBytes)
	e := &entity{raw: raw, header: hr.header}
	if hr.tooBig {
		p.warn("part header exceeds %d bytes; part kept whole", p.opts.MaxHeaderBytes)
		e.opaque = "header"
		return e
	}
	if hr.noBlank && hr.header.Len() > 0 {
		p.warn("header not followed by a blank line")
	}
	e.body = raw[hr.bodyOff:]
	e.mediaType, e.params = contentType(&e.header, defType)
	if !strings.HasPrefix(e.mediaType, "multipart/") {
		return e
	}
	if depth >= p.opts.MaxDepth {
		p.warn("multipart nesting deeper than %d; subtree kept as one attachment", p.opts.MaxDepth)
		e.opaque = "depth"
		return e
	}
	boundary := e.params["boundary"]
	split := splitMultipart(e.body, boundary)
	if len(split.parts) == 0 {
		if g := guessBoundary(e.body); g != "" {
			p.warn("multipart boundary missing or not found; guessed from the body")
			boundary, split = g, splitMultipart(e.body, g)
		}
	}
	if len(split.parts) == 0 {
		// No structure at all: show the body as text rather than lose it.
		p.warn("multipart without parts; body read as text/plain")
		e.mediaType = "text/plain"
		return e
	}
	if split.truncated {
		p.warn("multipart not closed by its boundary")
	}
	if split.reopened {
		p.warn("parts after a closing boundary")
	}
	childType := "text/plain"
	if e.mediaType == "multipart/digest" {
		childType = "message/rfc822"
	}
	for i, part := range split.parts {
		if p.parts >= p.opts.MaxParts {
			p.warn("more than %d MIME parts; the rest kept as one attachment", p.opts.MaxParts)
			e.children = append(e.children, remainder(e.body[split.starts[i]:], boundary))
			break
		}
		e.children = append(e.children, p.parse(part, depth+1, childType, false))
	}
	return e
}

// remainder wraps the unparsed tail of a multipart body (from a delimiter
// on) in a header that names its boundary. The result is a valid MIME
// message, so a mail client that opens the .eml attachment shows the parts
// that were beyond the limit.
func remainder(tail []byte, boundary string) *entity {
	hdr := "Content-Type: multipart/mixed; boundary=\"" + strings.ReplaceAll(boundary, "\"", "") + "\"\r\n\r\n"
	raw := make([]byte, 0, len(hdr)+len(tail))
	raw = append(append(raw, hdr...), tail...)
	return &entity{raw: raw, mediaType: "multipart/mixed", opaque: "parts"}
}

// contentType returns the entity's media type and parameters. A missing
// field gives defType; a value that is not "type/subtype" is read as
// text/plain, as RFC 2045 §5.2 says.
func contentType(h *textproto.Header, defType string) (string, map[string]string) {
	raw := h.Get("Content-Type")
	if strings.TrimSpace(raw) == "" {
		return defType, map[string]string{}
	}
	mt, params := mailhdr.ParseMediaType(raw)
	if !validMediaType(mt) {
		return "text/plain", params
	}
	return mt, params
}

// validMediaType checks "type/subtype" with RFC 2045 token characters.
func validMediaType(mt string) bool {
	slash := strings.IndexByte(mt, '/')
	if slash <= 0 || slash == len(mt)-1 {
		return false
	}
	for i := 0; i < len(mt); i++ {
		c := mt[i]
		if i == slash {
			continue
		}
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?=", c) >= 0 {
			return false
		}
	}
	return true
}
