package convert

import (
	"bytes"
	"strings"

	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// Body candidates rank by how much of the sender's intent Graph can show:
// HTML over plain text over enriched text. A candidate whose text is empty
// ranks below every non-empty one, so an empty HTML alternative never hides
// a real plain-text body.
const (
	rankNone = iota
	rankEmpty
	rankEnriched
	rankPlain
	rankHTML
)

// isTextCandidate reports whether a leaf may be the body: text/plain,
// text/html or text/enriched that the sender did not mark as a file (no
// "attachment" disposition, no file name). A text part marked as a file is
// an attachment even when it is the only part.
func isTextCandidate(e *entity) bool {
	if e.opaque != "" || e.isMultipart() {
		return false
	}
	switch e.mediaType {
	case "text/plain", "text/html", "text/enriched", "text/richtext":
	default:
		return false
	}
	disp, dparams := mailhdr.ParseMediaType(e.header.Get("Content-Disposition"))
	if disp == "attachment" {
		return false
	}
	return strings.TrimSpace(dparams["filename"]) == "" && strings.TrimSpace(e.params["name"]) == ""
}

// leafRank ranks a candidate leaf (rankNone for anything else).
func (c *converter) leafRank(e *entity) int {
	if e == nil || !isTextCandidate(e) {
		return rankNone
	}
	if strings.TrimSpace(c.textOf(e)) == "" {
		return rankEmpty
	}
	switch e.mediaType {
	case "text/html":
		return rankHTML
	case "text/plain":
		return rankPlain
	}
	return rankEnriched
}

// selectBody picks the body leaf of the message, or nil, and marks the
// alternatives it replaces as dropped. keep reports that the body is also
// an attachment: a text part the sender named as a file (rule 21a).
func (c *converter) selectBody(root *entity) (body *entity, keep bool) {
	b := c.pickBody(root)
	c.markAlternatives(root)
	if c.leafRank(b) <= rankEmpty {
		if named := c.namedInlineText(root); named != nil {
			return named, true
		}
	}
	return b, false
}

// namedInlineText finds, in document order, the first non-empty text part
// that carries a file name but was not marked as an attachment
// ("inline; filename=msg.txt", or a name parameter without a disposition).
// Thunderbird, Apple Mail and Outlook show such a part as the message text
// when nothing else is, so it becomes the body of a message that has no
// other; it stays an attachment too, so the named file arrives as sent.
func (c *converter) namedInlineText(e *entity) *entity {
	if e.dropped || e.opaque != "" {
		return nil
	}
	if e.isMultipart() {
		for _, ch := range e.children {
			if b := c.namedInlineText(ch); b != nil {
				return b
			}
		}
		return nil
	}
	switch e.mediaType {
	case "text/plain", "text/html", "text/enriched", "text/richtext":
	default:
		return nil
	}
	if disp, _ := mailhdr.ParseMediaType(e.header.Get("Content-Disposition")); disp == "attachment" {
		return nil
	}
	if strings.TrimSpace(c.textOf(e)) == "" || looksBinary(c.decoded(e)) {
		return nil
	}
	return e
}

// looksBinary reports content that only claims to be text: a NUL byte in
// the first few kilobytes, as in an image sent as text/plain. Such a part
// stays an attachment rather than filling the body with noise.
func looksBinary(b []byte) bool {
	return bytes.IndexByte(b[:min(len(b), 8192)], 0) >= 0
}

// pickBody returns the leaf that would be the body of e's subtree:
//   - a candidate leaf is its own body;
//   - multipart/alternative takes its highest-ranked alternative, the last
//     one among equals (RFC 2046 orders alternatives by faithfulness);
//   - multipart/related takes the body of its root part (the "start"
//     parameter, else the first part);
//   - every other multipart (mixed, signed, report, unknown) takes the
//     first non-empty candidate in order, so a second text part becomes an
//     attachment instead of being appended silently.
//
// Results are memoised: nested alternatives would otherwise be ranked again
// at every level, which is exponential in the depth.
func (c *converter) pickBody(e *entity) *entity {
	if e.picked {
		return e.pick
	}
	e.picked = true
	switch {
	case e.opaque != "":
	case e.mediaType == "multipart/alternative":
		best, bestRank := (*entity)(nil), rankNone
		for _, ch := range e.children {
			if r := c.leafRank(c.pickBody(ch)); r > rankNone && r >= bestRank {
				best, bestRank = ch, r
			}
		}
		if best != nil {
			e.pick = c.pickBody(best)
		}
	case e.mediaType == "multipart/related":
		root := relatedRoot(e)
		if root != nil {
			e.pick = c.pickBody(root)
		}
		if e.pick == nil {
			e.pick = c.firstBody(e.children)
		}
	case e.isMultipart():
		e.pick = c.firstBody(e.children)
	case isTextCandidate(e):
		e.pick = e
	}
	return e.pick
}

// firstBody returns the first non-empty body among children, else the
// first empty one.
func (c *converter) firstBody(children []*entity) *entity {
	var empty *entity
	for _, ch := range children {
		b := c.pickBody(ch)
		switch c.leafRank(b) {
		case rankNone:
		case rankEmpty:
			if empty == nil {
				empty = b
			}
		default:
			return b
		}
	}
	return empty
}

// relatedRoot finds the root part of a multipart/related entity.
func relatedRoot(e *entity) *entity {
	if len(e.children) == 0 {
		return nil
	}
	if start := normalizeCID(e.params["start"]); start != "" {
		for _, ch := range e.children {
			if normalizeCID(ch.header.Get("Content-Id")) == start {
				return ch
			}
		}
	}
	return e.children[0]
}

// markAlternatives walks the tree and, in every multipart/alternative
// whose body was chosen, marks the text parts of the other alternatives as
// dropped: they are other renderings of the same content (text/plain,
// text/enriched, text/watch-html, text/x-amp-html), not files the sender
// attached. Two kinds of part are kept as attachments because they may be
// the only carrier of something: non-text parts (an image, a PDF), and a
// calendar (text/calendar) unless the message carries the same calendar
// elsewhere, as Outlook and Gmail invitations do with an invite.ics.
func (c *converter) markAlternatives(root *entity) {
	var calendars []*entity
	var walk func(e *entity)
	walk = func(e *entity) {
		if !e.isMultipart() {
			return
		}
		if e.mediaType == "multipart/alternative" && e.pick != nil {
			for _, ch := range e.children {
				if c.pickBody(ch) != e.pick {
					calendars = dropRenderings(ch, calendars)
				}
			}
		}
		for _, ch := range e.children {
			walk(ch)
		}
	}
	walk(root)
	for _, cal := range calendars {
		if c.calendarElsewhere(root, cal) {
			cal.dropped = true
		}
	}
}

// dropRenderings marks the text leaves of an unchosen alternative as
// dropped and returns the calendars among them, which are dropped only when
// a copy exists elsewhere. A text part the sender explicitly marked as an
// attachment is kept.
func dropRenderings(e *entity, calendars []*entity) []*entity {
	if e.opaque != "" {
		return calendars
	}
	if e.isMultipart() {
		for _, ch := range e.children {
			calendars = dropRenderings(ch, calendars)
		}
		return calendars
	}
	if !strings.HasPrefix(e.mediaType, "text/") {
		return calendars
	}
	if disp, _ := mailhdr.ParseMediaType(e.header.Get("Content-Disposition")); disp == "attachment" {
		return calendars
	}
	if isCalendar(e.mediaType) {
		return append(calendars, e)
	}
	e.dropped = true
	return calendars
}

func isCalendar(mt string) bool {
	return mt == "text/calendar" || mt == "application/ics" || mt == "text/x-vcalendar"
}

// calendarElsewhere reports whether another, kept leaf of the tree holds
// the same calendar as cal (equal after line endings and surrounding blanks
// are normalised, since one copy is often quoted-printable and the other
// base64).
func (c *converter) calendarElsewhere(root, cal *entity) bool {
	want := normalizeCalendar(c.decoded(cal))
	found := false
	var walk func(e *entity)
	walk = func(e *entity) {
		switch {
		case found || e == cal || e.dropped || e.opaque != "":
		case e.isMultipart():
			for _, ch := range e.children {
				walk(ch)
			}
		case isCalendar(e.mediaType):
			found = normalizeCalendar(c.decoded(e)) == want
		}
	}
	walk(root)
	return found
}

func normalizeCalendar(b []byte) string {
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\r\n", "\n"))
}

// bodyOf builds the Graph body: HTML for text/html, Text otherwise, and an
// empty Text body when the message has none.
func (c *converter) bodyOf(b *entity) graph.ItemBody {
	if b == nil {
		return graph.ItemBody{ContentType: graph.BodyText}
	}
	ct := graph.BodyText
	if b.mediaType == "text/html" {
		ct = graph.BodyHTML
	}
	return graph.ItemBody{ContentType: ct, Content: c.textOf(b)}
}
