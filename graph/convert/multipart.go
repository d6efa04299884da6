package convert

import (
	"bytes"
)

// delimiter is one boundary line found in a multipart body.
type delimiter struct {
	start int  // offset of the line break before "--boundary" (or of "--" at offset 0)
	after int  // offset just past the delimiter line
	close bool // "--boundary--"
}

// findDelimiters returns the boundary lines of body in order. A delimiter
// line starts with "--" and the boundary; "--" after it makes it the close
// delimiter. RFC 2046 §5.1.1 says the rest of the line need not match ("it
// is sufficient that the boundary appear in its entirety following the
// CRLF"), so text after the boundary is ignored as long as a blank
// separates it: "--boundaryX" is a different, longer boundary. Lines may
// end in CRLF, LF, or a mix of both, as curl and Python's smtplib send them;
// go-message's reader fixes the line ending from the first delimiter and
// loses the parts of such mail.
func findDelimiters(body []byte, boundary string) []delimiter {
	if boundary == "" {
		return nil
	}
	dash := []byte("--" + boundary)
	var out []delimiter
	for from := 0; from < len(body); {
		j := bytes.Index(body[from:], dash)
		if j < 0 {
			break
		}
		pos := from + j
		from = pos + len(dash)
		if pos > 0 && body[pos-1] != '\n' {
			continue
		}
		restOff := pos + len(dash)
		close := bytes.HasPrefix(body[restOff:], []byte("--"))
		if !close && restOff < len(body) && !isLineSpace(body[restOff]) {
			continue // "--boundaryX": a longer boundary, or text
		}
		d := delimiter{start: pos, close: close, after: lineEnd(body, restOff)}
		// The line break before the delimiter belongs to it.
		if d.start > 0 {
			d.start--
			if d.start > 0 && body[d.start-1] == '\r' {
				d.start--
			}
		}
		out = append(out, d)
		from = d.after
	}
	return out
}

func isLineSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// splitResult describes the parts of a multipart body.
type splitResult struct {
	parts     [][]byte // raw bytes of each part, header included
	starts    []int    // offset in body of the delimiter that opens each part
	closed    bool     // a close delimiter ended the parts
	reopened  bool     // parts continued after a premature close delimiter
	truncated bool     // the body ended inside the last part
}

// splitMultipart cuts body at its delimiters. The preamble and the epilogue
// are dropped, as RFC 2046 says. Malformed structure is tolerated:
//   - a missing close delimiter ends the last part at the end of the body;
//   - a close delimiter followed later by more delimiters of the same
//     boundary does not end the parts (MIME-tools' "double-bound" mail),
//     so no attachment after it is lost.
func splitMultipart(body []byte, boundary string) splitResult {
	var res splitResult
	ds := findDelimiters(body, boundary)
	lastOpen := -1
	for i, d := range ds {
		if !d.close {
			lastOpen = i
		}
	}
	for i, d := range ds {
		if d.close {
			if lastOpen > i {
				res.reopened = true
				continue
			}
			res.closed = true
			break
		}
		end := len(body)
		if i+1 < len(ds) {
			end = ds[i+1].start
		} else {
			// Without a close delimiter the part ends at the end of the
			// body, and the message's last line break stands where the
			// missing delimiter's line break would: it belongs to the
			// delimiter (RFC 2046 §5.1.1), not to the part.
			res.truncated = true
			end = trimFinalEOL(body, max(end, d.after), d.after)
		}
		res.parts = append(res.parts, body[d.after:max(end, d.after)])
		res.starts = append(res.starts, d.start)
	}
	return res
}

// guessBoundary finds the boundary of a multipart body whose boundary
// parameter is missing or matches nothing: the first "--token" line that
// opens at least one part under splitMultipart. Only the first few
// candidates are tried, to bound the work on hostile input.
func guessBoundary(body []byte) string {
	tries := 0
	for i := 0; i < len(body) && tries < 5; {
		next := lineEnd(body, i)
		line := bytes.TrimRight(trimEOL(body[i:next]), " \t")
		if len(line) > 2 && len(line) <= 200 && line[0] == '-' && line[1] == '-' && !bytes.HasSuffix(line, []byte("--")) {
			tries++
			b := string(line[2:])
			if r := splitMultipart(body, b); len(r.parts) > 0 && (r.closed || len(r.parts) > 1) {
				return b
			}
		}
		i = next
	}
	return ""
}

// trimFinalEOL returns end moved back over one CRLF or LF, but not before
// floor.
func trimFinalEOL(body []byte, end, floor int) int {
	if end > floor && body[end-1] == '\n' {
		end--
		if end > floor && body[end-1] == '\r' {
			end--
		}
	}
	return end
}
