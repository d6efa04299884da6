package convert

import (
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

// selectBody picks the body leaf of the message, or nil, and marks the text
// alternatives it replaces as dropped.
func (c *converter) selectBody(root *entity) *entity {
	b := c.pickBody(root)
	c.markAlternatives(root)
	return b
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

// markAlternatives walks the tree and, in every multipart/alternative,
// marks the text candidates of the other
// alternatives as dropped: they are other renderings of the same body.
// Anything else in those alternatives (a calendar invitation, an image) is
// kept as an attachment.
func (c *converter) markAlternatives(e *entity) {
	if !e.isMultipart() {
		return
	}
	if e.mediaType == "multipart/alternative" && e.pick != nil {
		for _, ch := range e.children {
			if c.pickBody(ch) != e.pick {
				dropText(ch)
			}
		}
	}
	for _, ch := range e.children {
		c.markAlternatives(ch)
	}
}

func dropText(e *entity) {
	if e.isMultipart() {
		for _, ch := range e.children {
			dropText(ch)
		}
		return
	}
	if isTextCandidate(e) {
		e.dropped = true
	}
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
