package convert

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/graphrelay/graphrelay/graph"
)

// attachments returns a fileAttachment for every leaf that is not the body
// and not a dropped alternative, in document order. Subtrees kept whole by
// a limit become one .eml attachment each. Empty text parts that are not
// the body carry nothing and are skipped.
func (c *converter) attachments(root, body *entity, refs map[string]string) []graph.Attachment {
	var out []graph.Attachment
	var walk func(e *entity)
	walk = func(e *entity) {
		switch {
		case e == body || e.dropped:
		case e.isMultipart():
			for _, ch := range e.children {
				walk(ch)
			}
		case e.opaque != "":
			out = append(out, c.opaqueAttachment(e, len(out)+1))
		case isTextCandidate(e) && strings.TrimSpace(c.textOf(e)) == "":
		default:
			out = append(out, c.leafAttachment(e, len(out)+1, refs))
		}
	}
	walk(root)
	return out
}

// leafAttachment converts one leaf. The bytes are the body with only its
// transfer encoding removed: text attachments keep their charset and a
// message/rfc822 part keeps its exact bytes, so the recipient gets the
// file the sender attached.
func (c *converter) leafAttachment(e *entity, n int, refs map[string]string) graph.Attachment {
	a := graph.Attachment{
		ODataType:   graph.FileAttachmentType,
		Name:        c.attachmentName(e, n),
		ContentType: e.mediaType,
	}
	if !c.deferAttachment(e, e.body, n-1) {
		a.ContentBytes = c.detach(c.decoded(e))
	}
	if a.ContentBytes == nil {
		a.ContentBytes = []byte{}
	}
	if cid := normalizeCID(e.header.Get("Content-Id")); cid != "" {
		if ref, ok := refs[strings.ToLower(cid)]; ok {
			a.IsInline, a.ContentID = true, ref
		}
	}
	return a
}

// opaqueAttachment keeps a subtree that was not parsed as one message/rfc822
// file: its bytes are a valid MIME entity, so a mail client opening it shows
// the parts inside.
func (c *converter) opaqueAttachment(e *entity, n int) graph.Attachment {
	prefix := "nested-parts"
	if e.opaque == "parts" {
		prefix = "remaining-parts"
	}
	a := graph.Attachment{
		ODataType:    graph.FileAttachmentType,
		Name:         prefix + "-" + itoa(n) + ".eml",
		ContentType:  "message/rfc822",
		ContentBytes: []byte{},
	}
	if !c.deferAttachment(e, e.raw, n-1) {
		a.ContentBytes = c.detach(e.raw)
	}
	return a
}

// cidPattern finds cid: URLs in HTML attribute values and CSS url().
var cidPattern = regexp.MustCompile(`(?i)\bcid:([^"'\s<>()]+)`)

// cidRefs returns the Content-IDs that an HTML body references, keyed by
// their lower-cased, URL-decoded form (RFC 2392 URLs are percent-encoded,
// and mailers differ in case), mapped to the reference as the HTML writes
// it. That written form becomes the attachment's contentId, because it is
// what Outlook matches against the src attribute.
func cidRefs(b graph.ItemBody) map[string]string {
	refs := make(map[string]string)
	if b.ContentType != graph.BodyHTML {
		return refs
	}
	for _, m := range cidPattern.FindAllStringSubmatch(b.Content, -1) {
		ref := m[1]
		key := ref
		if u, err := url.PathUnescape(ref); err == nil {
			key = u
		}
		key = strings.ToLower(normalizeCID(key))
		if _, ok := refs[key]; !ok && key != "" {
			refs[key] = ref
		}
	}
	return refs
}

// normalizeCID strips the angle brackets and blanks around a Content-ID.
func normalizeCID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	if i := strings.IndexByte(s, '>'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
