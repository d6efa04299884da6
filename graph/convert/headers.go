package convert

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"

	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// MAPI properties for the threading headers that internetMessageHeaders
// refuses (only x- names are allowed there).
const (
	propInReplyTo  = "String 0x1042" // PidTagInReplyToId
	propReferences = "String 0x1039" // PidTagInternetReferences
)

// mapHeaders sets subject, importance, the read-receipt flag, the
// threading properties and the x-headers.
func (c *converter) mapHeaders(h *textproto.Header, m *graph.Message) {
	subj := sanitizeLine(mailhdr.DecodeText(h.Get("Subject")))
	if utf16Len(subj) > maxSubjectUTF16 {
		c.warn("subject longer than %d characters; cut", maxSubjectUTF16)
		subj = truncateUTF16(subj, maxSubjectUTF16)
	}
	m.Subject = subj
	m.Importance = importance(h)
	m.IsReadReceiptRequested = strings.TrimSpace(h.Get("Disposition-Notification-To")) != ""
	if id := firstMsgID(h.Get("In-Reply-To")); id != "" {
		m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties,
			graph.ExtendedProperty{ID: propInReplyTo, Value: "<" + id + ">"})
	}
	if refs := references(h.Get("References")); refs != "" {
		m.SingleValueExtendedProperties = append(m.SingleValueExtendedProperties,
			graph.ExtendedProperty{ID: propReferences, Value: refs})
	}
	m.InternetMessageHeaders = xHeaders(h, c.opts.MaxHeaders)
}

// importance maps the priority headers in order of authority: Importance
// (RFC 2156: high, normal, low), then X-Priority (1-2 high, 3 normal, 4-5
// low; written "1 (Highest)" by Outlook, sometimes "High"), then
// X-MSMail-Priority (Outlook: High, Normal, Low), then Priority (RFC 2156:
// urgent, normal, non-urgent). The first header with a recognisable value
// decides; normal or absent leaves the field out, since normal is Graph's
// default.
func importance(h *textproto.Header) string {
	for _, key := range []string{"Importance", "X-Priority", "X-Msmail-Priority", "Priority"} {
		if v, ok := priorityValue(h.Get(key)); ok {
			return v
		}
	}
	return ""
}

// priorityValue reads one priority header: "high", "low", or "" for
// normal; false when the value means nothing.
func priorityValue(v string) (string, bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	switch {
	case v == "":
		return "", false
	case v[0] == '1' || v[0] == '2':
		return "high", true
	case v[0] == '3' || strings.HasPrefix(v, "normal"):
		return "", true
	case v[0] == '4' || v[0] == '5':
		return "low", true
	case strings.HasPrefix(v, "high"), strings.HasPrefix(v, "urgent"):
		return "high", true
	case strings.HasPrefix(v, "low"), strings.HasPrefix(v, "non-urgent"):
		return "low", true
	}
	return "", false
}

// msgIDs extracts message IDs ("<local@domain>") from an In-Reply-To or
// References value, without brackets. Words between them (comments, "Your
// message of ...") are ignored; a value without brackets that holds a
// single word with '@' is taken as one ID.
func msgIDs(v string) []string {
	var ids []string
	for rest := v; ; {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(rest[i+1 : i+j]); id != "" && !strings.ContainsAny(id, " \t<") {
			ids = append(ids, id)
		}
		rest = rest[i+j+1:]
	}
	if len(ids) == 0 {
		if f := strings.Fields(v); len(f) == 1 && strings.Contains(f[0], "@") {
			ids = append(ids, strings.Trim(f[0], "<>"))
		}
	}
	return ids
}

func firstMsgID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 {
		return sanitizeLine(ids[0])
	}
	return ""
}

// references formats the References chain, keeping the first ID and as
// many of the most recent ones as fit in maxReferences bytes.
func references(v string) string {
	ids := msgIDs(v)
	for i := range ids {
		ids[i] = "<" + sanitizeLine(ids[i]) + ">"
	}
	if len(ids) == 0 || len(ids[0]) > maxReferences {
		return ""
	}
	size, from := len(ids[0]), len(ids)
	for from > 1 && size+1+len(ids[from-1]) <= maxReferences {
		from--
		size += 1 + len(ids[from])
	}
	return strings.Join(append(ids[:1:1], ids[from:]...), " ")
}

// xPreferred lists the x-headers carried first, most useful first:
// X-Mailer names the device or program that sent the message, the first
// thing an admin needs when a printer's mail looks wrong;
// X-Auto-Response-Suppress keeps Exchange from sending out-of-office and
// other auto-replies to cron jobs and scanners that cannot read them;
// X-Originating-IP says which host submitted it. Then come the others in
// message order, and last X-Priority and X-MSMail-Priority, which
// importance already carries.
var xPreferred = []string{"X-Mailer", "X-Auto-Response-Suppress", "X-Originating-Ip"}

var xLast = map[string]bool{"x-priority": true, "x-msmail-priority": true}

// xExcluded are prefixes never carried: Exchange's and Microsoft's own
// transport and anti-spam headers, whose values Exchange trusts when they
// come from inside the organisation (a relayed "X-MS-Exchange-Organization-
// SCL: -1" would bypass filtering), and other systems' spam and virus
// verdicts, which would mislead the recipient's filters.
var xExcluded = []string{"x-ms-", "x-microsoft-", "x-forefront-", "x-spam", "x-virus", "x-exchange-"}

// xHeaders selects up to max x-headers for internetMessageHeaders: names
// starting with "X-" (Graph refuses others), each name once (its first
// occurrence), values unfolded, decoded, on one line, and cut so that
// "Name: value" fits RFC 5322's 998-octet line. Names longer than 76
// octets are skipped. The field is omitted when nothing qualifies, since
// Graph refuses an empty collection.
func xHeaders(h *textproto.Header, max int) []graph.Header {
	if max <= 0 {
		return nil
	}
	type hdr struct {
		key, value string
	}
	var all []hdr
	seen := make(map[string]bool)
	fields := h.Fields()
	for fields.Next() {
		key := writtenKey(fields)
		lower := strings.ToLower(key)
		if !strings.HasPrefix(lower, "x-") || len(key) > maxHeaderName || seen[lower] || excludedX(lower) {
			continue
		}
		seen[lower] = true
		v := sanitizeLine(mailhdr.DecodeText(fields.Value()))
		if v == "" {
			continue
		}
		all = append(all, hdr{key, cutUTF8(v, maxHeaderLine-len(key)-2)})
	}
	var out []graph.Header
	take := func(match func(string) bool) {
		for i := range all {
			if all[i].key != "" && len(out) < max && match(all[i].key) {
				out = append(out, graph.Header{Name: all[i].key, Value: all[i].value})
				all[i].key = ""
			}
		}
	}
	for _, p := range xPreferred {
		take(func(k string) bool { return strings.EqualFold(k, p) })
	}
	take(func(k string) bool { return !xLast[strings.ToLower(k)] })
	take(func(string) bool { return true })
	return out
}

// writtenKey returns a field name as the sender wrote it: textproto's Key
// is canonicalised ("X-Originating-Ip"), which is harmless for matching but
// not what the recipient should see.
func writtenKey(f textproto.HeaderFields) string {
	if raw, err := f.Raw(); err == nil {
		if i := bytes.IndexByte(raw, ':'); i > 0 {
			return string(bytes.TrimRight(raw[:i], " \t"))
		}
	}
	return f.Key()
}

func excludedX(lower string) bool {
	for _, p := range xExcluded {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return false
}

// cutUTF8 cuts s to at most n bytes at a rune boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
