package convert

import "strings"

// unflow decodes RFC 3676 format=flowed text for display. Flowed senders
// (Thunderbird, Apple Mail, many webmailers) break paragraphs at about 72
// characters and mark the soft breaks with a trailing space; shown as
// contentType Text those breaks would be hard and the recipient would see
// ragged lines. Soft-broken lines of the same quote depth are joined, space
// stuffing is removed, and the "-- " signature separator stays a line of
// its own. With delsp=yes the space before a soft break is removed too.
func unflow(s string, delsp bool) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var out strings.Builder
	out.Grow(len(s))
	open := false // a paragraph is being joined
	depth := 0
	for i, line := range lines {
		d := 0
		for d < len(line) && line[d] == '>' {
			d++
		}
		content := strings.TrimPrefix(line[d:], " ") // space stuffing
		if open && d != depth {
			// A flowed line followed by a different quote depth: the
			// RFC says to end the paragraph there.
			out.WriteString("\r\n")
			open = false
		}
		if !open {
			if d > 0 {
				out.WriteString(strings.Repeat(">", d) + " ")
			}
			depth = d
		}
		flowed := strings.HasSuffix(content, " ") && content != "-- "
		if flowed && delsp {
			content = content[:len(content)-1]
		}
		out.WriteString(content)
		open = flowed
		if !flowed && i < len(lines)-1 {
			out.WriteString("\r\n")
		}
	}
	return out.String()
}
