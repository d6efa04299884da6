package convert

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/graphrelay/graphrelay/graph"
)

// attachments returns a fileAttachment for every leaf that is not the body
// (unless keepBody) and not a dropped alternative, in document order.
// Subtrees kept whole by a limit become one .eml attachment each. Empty text
// parts that are not the body carry nothing and are skipped.
func (c *converter) attachments(root, body *entity, keepBody bool, refs map[string]*cidRef) []graph.Attachment {
	var out []graph.Attachment
	var walk func(e *entity)
	walk = func(e *entity) {
		switch {
		case (e == body && !keepBody) || e.dropped:
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
func (c *converter) leafAttachment(e *entity, n int, refs map[string]*cidRef) graph.Attachment {
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
			if ref.cid == "" {
				ref.cid = cid
			}
			a.IsInline, a.ContentID = true, ref.cid
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

// cidRef is one Content-ID that the HTML body references. cid is the
// part's own Content-ID, set when a part answers the reference.
type cidRef struct {
	cid string
}

// cidRefs returns the Content-IDs that an HTML body references, keyed by
// their lower-cased, URL-decoded form: RFC 2392 says a cid: URL is
// percent-encoded and compares case-insensitively, and mailers differ in
// both.
func cidRefs(b graph.ItemBody) map[string]*cidRef {
	refs := make(map[string]*cidRef)
	if b.ContentType != graph.BodyHTML {
		return refs
	}
	for _, m := range cidPattern.FindAllStringSubmatch(b.Content, -1) {
		if key := cidKey(m[1]); key != "" && refs[key] == nil {
			refs[key] = &cidRef{}
		}
	}
	return refs
}

// cidKey is the comparison form of a cid: reference.
func cidKey(ref string) string {
	if u, err := url.PathUnescape(ref); err == nil {
		ref = u
	}
	return strings.ToLower(normalizeCID(ref))
}

// rewriteCIDs spells every cid: reference that a part answers exactly as
// that part's contentId, which is its Content-ID. Outlook compares the two
// literally, so "cid:Image001.PNG%4001D0" in the HTML and a part with
// Content-ID <image001.png@01D0> would otherwise show a broken image in one
// client or another; with one spelling on both sides every reader resolves
// it.
func rewriteCIDs(b graph.ItemBody, refs map[string]*cidRef) string {
	if b.ContentType != graph.BodyHTML || len(refs) == 0 {
		return b.Content
	}
	return cidPattern.ReplaceAllStringFunc(b.Content, func(m string) string {
		ref := refs[cidKey(m[len("cid:"):])]
		if ref == nil || ref.cid == "" {
			return m
		}
		return m[:len("cid:")] + cidURL(ref.cid)
	})
}

// cidURL percent-encodes the few characters of a Content-ID that cannot
// stand in a cid: URL inside an HTML attribute (RFC 2392: "%" itself, and
// what would end the attribute or the CSS url()).
func cidURL(cid string) string {
	var sb strings.Builder
	for i := 0; i < len(cid); i++ {
		switch ch := cid[i]; ch {
		case '%', '"', '\'', ' ', '\t', '<', '>', '(', ')':
			sb.WriteString(fmt.Sprintf("%%%02X", ch))
		default:
			sb.WriteByte(ch)
		}
	}
	return sb.String()
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
