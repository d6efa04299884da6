package convert

import (
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// MIMEEnvelope is what the header rewrite needs to know about the message.
type MIMEEnvelope struct {
	Mailbox    string   // the mailbox address the message is sent as
	FromName   string   // display name for From; "" for none
	ReplyTo    string   // Reply-To to add when the message has none; "" for none
	Recipients []string // RCPT TO addresses; authoritative
	// QualifyDomain is given to Reply-To addresses without a domain; ""
	// leaves them unusable, and they are removed.
	QualifyDomain string
}

// MIME is a passthrough message: a rewritten header followed by the
// original body, which stays in the input until it is written.
type MIME struct {
	Header     []byte // the rewritten header block, empty line included
	BodyOffset int64  // where the unchanged body starts in the input
	BodySize   int64
	// Removed counts To/Cc addresses that were not envelope recipients;
	// AddedBcc counts envelope recipients added as Bcc; DroppedBcc counts
	// the incoming Bcc fields removed.
	Removed, AddedBcc, DroppedBcc int
}

// Size is the length of the message as it will be sent.
func (m *MIME) Size() int64 { return int64(len(m.Header)) + m.BodySize }

// Bytes returns the whole message: the rewritten header, then the body
// read unchanged from input.
func (m *MIME) Bytes(input io.ReaderAt) ([]byte, error) {
	out := make([]byte, m.Size())
	n := copy(out, m.Header)
	if _, err := io.ReadFull(io.NewSectionReader(input, m.BodyOffset, m.BodySize), out[n:]); err != nil {
		return nil, fmt.Errorf("read message body: %w", err)
	}
	return out, nil
}

// headerReadSlack is read beyond DefaultMaxHeaderBytes so that a header
// block at the limit still has its end, and the first body line, in view.
const headerReadSlack = 64 << 10

// MIMEHeadSize is how much of a size-byte message PrepareMIME reads: a
// message whose first MIMEHeadSize bytes are white space is empty to it,
// whatever follows, and the relay's check before 250 must judge the same.
func MIMEHeadSize(size int64) int64 { return min(size, DefaultMaxHeaderBytes+headerReadSlack) }

// PrepareMIME reads the header block of the size-byte message in input and
// rewrites it for MIME passthrough. Only the header is read; the body stays
// in input. It returns an *Error for a message that has no usable header
// block (empty, or a header over DefaultMaxHeaderBytes).
//
// MIME passthrough (delivery format "mime") sends the sender's own RFC 5322
// message to Graph, base64-encoded, instead of converting it. It is for mail
// that only survives unparsed: calendar invitations, S/MIME and
// multipart/signed (whose signatures cover the exact body bytes), and
// threading headers (In-Reply-To, References) that JSON cannot carry.
//
// Graph takes the sender and the recipients of a MIME message from its
// header, not from an envelope, so the top-level header is rewritten and the
// body is left byte for byte as it arrived. The rule:
//
//   - From becomes the mailbox the policy chose, with the policy's display
//     name (MIMEEnvelope.FromName; none lets Exchange use the mailbox's
//     own). It replaces the first From field in place; further From fields
//     are removed. Exchange refuses a From it has no Send As right for.
//   - Sender is removed: it names the original sender, whom Exchange would
//     refuse just the same, and Exchange sets it itself when needed.
//   - Reply-To from MIMEEnvelope.ReplyTo (the original sender when the
//     policy rewrote the From) is added after From when the message has no
//     usable Reply-To. An existing one whose addresses are all canonical
//     mailboxes is kept byte for byte; otherwise it is rewritten with its
//     usable addresses only, one without a domain qualified with
//     MIMEEnvelope.QualifyDomain ("root" becomes root@domain, never
//     "<root@>"), and removed when none is left.
//   - The envelope is authoritative for who receives the message, as in
//     JSON mode: every incoming Bcc field is removed first (Graph would
//     deliver to it, and the client did not ask the relay to). Each To and
//     Cc field keeps only the addresses that are envelope recipients
//     (compared case-insensitively), each once: an address that any To
//     lists stays in the first To that lists it and leaves every Cc, as
//     JSON mode puts it in toRecipients. A field left with no address is
//     removed, and a field with nothing removed or respelt keeps its exact
//     bytes; an address written in another spelling of an envelope
//     recipient's domain (U-label for the A-label) is written as the
//     envelope has it, so Graph sends to the address that was checked.
//     Envelope recipients that no remaining To or Cc lists are added as one
//     Bcc field, which Exchange delivers to and does not show.
//   - With no envelope recipients (a re-send tool) To, Cc and Bcc stay.
//   - Everything else (Subject, Date, Message-ID, In-Reply-To,
//     References, MIME fields, X- headers, and the body) is unchanged. A
//     leading mbox "From " line or byte order mark, which are not part of
//     the message, is dropped, and a header that ran into the body without
//     its empty line gets one.
//
// There is no large-message path for MIME: an upload session carries one
// attachment of a draft, not a message's MIME, and splitting the MIME
// would break its signatures. A message whose base64 exceeds the request
// limit (about 3 MB of MIME) is refused as too large.
func PrepareMIME(input io.ReaderAt, size int64, env MIMEEnvelope) (*MIME, error) {
	head := make([]byte, MIMEHeadSize(size))
	if _, err := io.ReadFull(io.NewSectionReader(input, 0, int64(len(head))), head); err != nil {
		return nil, fmt.Errorf("convert: reading message header: %w", err)
	}
	if len(bytes.TrimSpace(head)) == 0 {
		return nil, errorf("empty message")
	}
	hr := readHeader(head, true, DefaultMaxHeaderBytes)
	if hr.tooBig || (hr.bodyOff == len(head) && int64(len(head)) < size) {
		return nil, errorf("header block larger than %d bytes", DefaultMaxHeaderBytes)
	}
	rw := newHeaderRewrite(env, &hr.header)
	for _, v := range hr.header.Values("To") {
		list, _ := mailhdr.ParseAddressList(v)
		for _, a := range list {
			rw.inTo[addrKey(a.Address)] = true
		}
	}
	fields := hr.header.Fields()
	for fields.Next() {
		raw, err := fields.Raw()
		if err != nil {
			continue // unreachable: every field of readHeader has raw bytes
		}
		rw.field(fields.Key(), fields.Value(), raw)
	}
	m := &MIME{Header: rw.finish(), BodyOffset: int64(hr.bodyOff), BodySize: size - int64(hr.bodyOff),
		Removed: rw.removed, AddedBcc: rw.addedBcc, DroppedBcc: rw.droppedBcc}
	return m, nil
}

// headerRewrite builds the new header block field by field, in order.
type headerRewrite struct {
	env        MIMEEnvelope
	rcpts      map[string]string // envelope recipients by addrKey
	inTo       map[string]bool   // addresses any To field lists
	listed     map[string]bool   // envelope recipients a kept To or Cc lists
	addReplyTo bool
	fromDone   bool
	// replyTo are the usable Reply-To addresses; replyToRaw says the
	// original fields hold exactly these and are copied as written.
	replyTo     []mailhdr.Address
	replyToRaw  bool
	replyToDone bool
	out         bytes.Buffer

	removed, addedBcc, droppedBcc int
}

func newHeaderRewrite(env MIMEEnvelope, h *textproto.Header) *headerRewrite {
	rw := &headerRewrite{env: env, rcpts: map[string]string{}, inTo: map[string]bool{}, listed: map[string]bool{}}
	rw.replyTo, rw.replyToRaw = usableReplyTo(h, env.QualifyDomain)
	if _, err := mailhdr.Canonical(env.ReplyTo); err == nil && len(rw.replyTo) == 0 {
		rw.addReplyTo = true
	}
	for _, a := range envelopeAddrs(Envelope{Recipients: env.Recipients}) {
		rw.rcpts[addrKey(a)] = a
	}
	return rw
}

// field handles one original field: key is canonical, value unfolded, raw
// the field as written.
func (rw *headerRewrite) field(key, value string, raw []byte) {
	switch strings.ToLower(key) {
	case "from":
		if !rw.fromDone {
			rw.writeFrom()
		}
	case "sender":
	case "reply-to":
		switch {
		case rw.replyToRaw:
			rw.writeRaw(raw)
		case !rw.replyToDone && len(rw.replyTo) > 0:
			rw.writeField("Reply-To", formatAddressList(rw.replyTo))
		}
		rw.replyToDone = true
	case "bcc":
		if len(rw.rcpts) == 0 {
			rw.writeRaw(raw)
			return
		}
		rw.droppedBcc++
	case "to", "cc":
		rw.recipientField(key, value, raw)
	default:
		rw.writeRaw(raw)
	}
}

// recipientField keeps the envelope recipients of a To or Cc field.
func (rw *headerRewrite) recipientField(key, value string, raw []byte) {
	if len(rw.rcpts) == 0 {
		rw.writeRaw(raw)
		return
	}
	list, err := mailhdr.ParseAddressList(value)
	isCc := strings.EqualFold(key, "cc")
	var kept []mailhdr.Address
	respelt := false
	for _, a := range list {
		k := addrKey(a.Address)
		if env, ok := rw.rcpts[k]; ok && !rw.listed[k] && !(isCc && rw.inTo[k]) {
			// Graph sends to the header's spelling: it must be the
			// envelope's checked one ("bücher.example" as the A-label
			// the recipient was accepted in).
			if !strings.EqualFold(a.Address, env) {
				a.Address, respelt = env, true
			}
			kept = append(kept, a)
			rw.listed[k] = true
		}
	}
	rw.removed += len(list) - len(kept)
	switch {
	case len(list) == 0 && err == nil:
		// Only a group with no members ("undisclosed-recipients:;"):
		// nobody to remove, and the field is harmless.
		rw.writeRaw(raw)
	case len(kept) == len(list) && err == nil && !respelt:
		rw.writeRaw(raw)
	case len(kept) > 0:
		rw.writeField(key, formatAddressList(kept))
	}
}

func (rw *headerRewrite) writeFrom() {
	rw.fromDone = true
	rw.writeField("From", (&mail.Address{Name: mailhdr.CleanDisplayName(rw.env.FromName), Address: rw.env.Mailbox}).String())
	if rw.addReplyTo {
		rw.addReplyTo = false
		rw.writeField("Reply-To", (&mail.Address{Address: rw.env.ReplyTo}).String())
	}
}

// usableReplyTo returns the Reply-To addresses a reply can go to: those
// that are canonical mailboxes once an address without a domain has taken
// domain. raw reports that every field held only such addresses, already
// qualified, so the fields can be kept as written.
func usableReplyTo(h *textproto.Header, domain string) (list []mailhdr.Address, raw bool) {
	raw = true
	for _, v := range h.Values("Reply-To") {
		addrs, err := mailhdr.ParseAddressList(v)
		if err != nil {
			raw = false
		}
		for _, a := range addrs {
			c, err := mailhdr.Canonical(mailhdr.Qualify(a.Address, domain))
			if err != nil || strings.HasPrefix(c, `"`) {
				raw = false
				continue
			}
			if !strings.Contains(a.Address, "@") {
				raw = false
			}
			a.Address = c
			list = append(list, a)
		}
	}
	return list, raw && len(list) > 0
}

// finish adds the fields the message lacked and the empty line.
func (rw *headerRewrite) finish() []byte {
	var top []byte
	if !rw.fromDone {
		// No From at all: it goes first, where a reader expects it.
		body := append([]byte{}, rw.out.Bytes()...)
		rw.out.Reset()
		rw.writeFrom()
		top = append(top, rw.out.Bytes()...)
		rw.out.Reset()
		rw.out.Write(top)
		rw.out.Write(body)
	}
	var bcc []mailhdr.Address
	seen := map[string]bool{}
	for _, a := range envelopeAddrs(Envelope{Recipients: rw.env.Recipients}) {
		k := addrKey(a)
		if !rw.listed[k] && !seen[k] {
			seen[k] = true
			bcc = append(bcc, mailhdr.Address{Address: a})
		}
	}
	if len(bcc) > 0 {
		rw.addedBcc = len(bcc)
		rw.writeField("Bcc", formatAddressList(bcc))
	}
	rw.out.WriteString("\r\n")
	return rw.out.Bytes()
}

// writeRaw copies an original field, ending it with a line break if the
// input did not (a header that ends the message). A line that lost its
// folding indent and was joined to the field (mailhdr.ReadBlock's repair)
// gets one back, so Graph's parser reads the field as the relay did
// instead of refusing the header.
func (rw *headerRewrite) writeRaw(raw []byte) {
	for i := 0; i < len(raw); {
		end := mailhdr.LineEnd(raw, i)
		if i > 0 && raw[i] != ' ' && raw[i] != '\t' {
			rw.out.WriteByte(' ')
		}
		rw.out.Write(raw[i:end])
		i = end
	}
	if !bytes.HasSuffix(raw, []byte("\n")) {
		rw.out.WriteString("\r\n")
	}
}

// writeField writes a new field with go-message's formatting, which folds
// lines at 76 characters where it can.
func (rw *headerRewrite) writeField(key, value string) {
	var h textproto.Header
	h.Add(key, value)
	if err := textproto.WriteHeader(&rw.out, h); err == nil {
		rw.out.Truncate(rw.out.Len() - 2) // WriteHeader ends the block with an empty line
	}
}

// formatAddressList writes addresses as RFC 5322 mailboxes; net/mail
// encodes non-ASCII display names as RFC 2047 encoded words.
func formatAddressList(list []mailhdr.Address) string {
	parts := make([]string, len(list))
	for i, a := range list {
		parts[i] = (&mail.Address{Name: mailhdr.CleanDisplayName(sanitizeLine(a.Name)), Address: a.Address}).String()
	}
	return strings.Join(parts, ", ")
}
