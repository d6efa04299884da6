package queue

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"path/filepath"
	"strings"
	"time"

	msgtextproto "github.com/emersion/go-message/textproto"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// Notice kinds, also the value of the X-Graphrelay-Notice header and of
// Record.Notice.
const (
	noticeFailed  = "failed"
	noticeDelayed = "delayed"
)

// NoticeHeader marks a message graphrelay generated about another one.
const NoticeHeader = "X-Graphrelay-Notice"

// noticeAttachLimit is the largest original attached whole. Graph takes
// at most 4 MB per request and base64 grows the attachment by a third,
// so larger originals are described by their header block only (they
// stay in failed/ for the admin).
const noticeAttachLimit = 2 << 20

// notify queues a notice about rec and returns its queue id. The notice
// is an ordinary spooled message (durable, retried, limited like any
// other) whose record is marked as a notice and whose envelope sender is
// <>, so it can never cause a notice itself.
func (q *Queue) notify(kind string, it *item, res result, now time.Time) (string, error) {
	rec := it.rec
	to := q.fate.NoticeRecipients(rec)
	f, orig, err := q.spool.openMessage(areaQueue, rec.Envelope.ID, it.offset, rec.Envelope.Size)
	if err != nil {
		return "", fmt.Errorf("read the original for the notice: %w", err)
	}
	defer f.Close()
	in := noticeInput{
		Kind: kind, ID: envelope.NewID(), From: q.opts.NoticeMailbox.Address, To: to,
		Now: now, Rec: rec, Res: res, Expiry: rec.expiry(q.opts.MaxAge),
		Kept: filepath.Join(q.opts.Dir, areaFailed, rec.Envelope.ID+extMsg),
	}
	raw, err := buildNotice(in, orig, rec.Envelope.Size)
	if err != nil {
		return "", err
	}
	env := &envelope.Envelope{
		ID: in.ID, Listener: "graphrelay", Helo: "graphrelay", From: "", Recipients: to,
		Mailbox: q.opts.NoticeMailbox, Format: envelope.FormatJSON, ReceivedAt: now,
	}
	nit, err := q.accept(env, bytes.NewReader(raw), kind, rec.Envelope.ID)
	if err != nil {
		return "", err
	}
	q.log.Info("queued", append(MsgAttrs(nit.rec), "notice_to", strings.Join(to, ","))...)
	q.add(nit)
	return in.ID, nil
}

// noticeInput is what a notice says.
type noticeInput struct {
	Kind   string
	ID     string // the notice's own queue id
	From   string // the notice mailbox
	To     []string
	Now    time.Time
	Rec    *Record
	Res    result
	Expiry time.Time
	Kept   string // where a dead letter is kept
}

// buildNotice renders an RFC 5322 multipart/mixed notice: a text part
// naming the original's subject, sender, recipients, the reason and the
// hint, and the original attached as message/rfc822 (or only its header
// block, as text/rfc822-headers, when it is too large for Graph).
func buildNotice(in noticeInput, orig io.ReaderAt, size int64) ([]byte, error) {
	env := &in.Rec.Envelope
	hdr, h, err := readHeaderBlock(orig, size)
	if err != nil {
		return nil, fmt.Errorf("read the original's header: %w", err)
	}
	subject := "(no subject)"
	if s := mailhdr.DecodeText(h.Get("Subject")); s != "" {
		subject = s
	}
	headerFrom := formatSenders(mailhdr.Senders(&h, env.QualifyDomain))

	var b bytes.Buffer
	title := "Undeliverable"
	if in.Kind == noticeDelayed {
		title = "Delayed"
	}
	domain := "graphrelay.invalid"
	if _, d, ok := strings.Cut(in.From, "@"); ok && d != "" {
		domain = d
	}
	mw := multipart.NewWriter(&b)
	var top bytes.Buffer
	fmt.Fprintf(&top, "From: graphrelay <%s>\r\n", in.From)
	fmt.Fprintf(&top, "To: %s\r\n", strings.Join(in.To, ", "))
	fmt.Fprintf(&top, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", "[graphrelay] "+title+": "+subject))
	fmt.Fprintf(&top, "Date: %s\r\n", in.Now.Format(time.RFC1123Z))
	fmt.Fprintf(&top, "Message-ID: <%s.notice@%s>\r\n", in.ID, domain)
	// RFC 3834: automatic mail, so auto-responders stay quiet.
	top.WriteString("Auto-Submitted: auto-generated\r\n")
	// Exchange's own spelling of the same: no out-of-office replies.
	top.WriteString("X-Auto-Response-Suppress: All\r\n")
	fmt.Fprintf(&top, "%s: %s; id=%s\r\n", NoticeHeader, in.Kind, env.ID)
	top.WriteString("MIME-Version: 1.0\r\n")
	fmt.Fprintf(&top, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", mw.Boundary())

	text := noticeText(in, subject, headerFrom, size)
	tp, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"},
	})
	if err != nil {
		return nil, err
	}
	qp := quotedprintable.NewWriter(tp)
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	if size <= noticeAttachLimit {
		body := make([]byte, size)
		if _, err := orig.ReadAt(body, 0); err != nil && err != io.EOF {
			return nil, fmt.Errorf("attach the original: %w", err)
		}
		h := textproto.MIMEHeader{
			"Content-Type":        {"message/rfc822"},
			"Content-Disposition": {fmt.Sprintf("attachment; filename=\"original-%s.eml\"", env.ID)},
		}
		// message/rfc822 may not be base64-encoded (RFC 2046 §5.2.1); an
		// 8-bit original is declared as such.
		if !is7bit(body) {
			h.Set("Content-Transfer-Encoding", "8bit")
		}
		ap, err := mw.CreatePart(h)
		if err != nil {
			return nil, err
		}
		if _, err := ap.Write(body); err != nil {
			return nil, err
		}
	} else {
		hp, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":        {"text/rfc822-headers"},
			"Content-Disposition": {fmt.Sprintf("attachment; filename=\"original-%s-headers.txt\"", env.ID)},
		})
		if err != nil {
			return nil, err
		}
		if _, err := hp.Write(hdr); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return append(top.Bytes(), b.Bytes()...), nil
}

// noticeText is the human-readable part.
func noticeText(in noticeInput, subject, headerFrom string, size int64) string {
	env := &in.Rec.Envelope
	var t strings.Builder
	if in.Kind == noticeDelayed {
		fmt.Fprintf(&t, "graphrelay has not yet been able to send a message through Microsoft Graph.\r\n")
		fmt.Fprintf(&t, "It keeps trying until %s; no action is needed if the cause below is temporary.\r\n\r\n", in.Expiry.Format(time.RFC1123Z))
	} else {
		fmt.Fprintf(&t, "graphrelay could not send a message through Microsoft Graph and has given up.\r\n\r\n")
	}
	sender := env.From
	if headerFrom != "" && !strings.Contains(strings.ToLower(headerFrom), strings.ToLower(env.From)) {
		sender += " (header From: " + headerFrom + ")"
	}
	fmt.Fprintf(&t, "  Subject:     %s\r\n", subject)
	fmt.Fprintf(&t, "  Sender:      %s\r\n", sender)
	fmt.Fprintf(&t, "  Recipients:  %s\r\n", strings.Join(env.Recipients, ", "))
	fmt.Fprintf(&t, "  Sent as:     %s\r\n", env.Mailbox.Address)
	client := env.ClientIP
	if env.AuthUser != "" {
		client += ", authenticated as " + env.AuthUser
	}
	fmt.Fprintf(&t, "  Received:    %s from %s on listener %s\r\n", env.ReceivedAt.Format(time.RFC1123Z), client, env.Listener)
	fmt.Fprintf(&t, "  Queue id:    %s\r\n", env.ID)
	fmt.Fprintf(&t, "  Attempts:    %d\r\n\r\n", len(in.Rec.Attempts))
	reason := "Graph refused the message"
	switch {
	case in.Kind == noticeDelayed:
		reason = "Graph failed temporarily"
	case in.Rec.Dead != nil && in.Rec.Dead.Reason == "expired":
		reason = "Graph kept failing temporarily until the queue's maximum age (queue.max_age) passed"
	}
	fmt.Fprintf(&t, "Reason: %s.\r\n", reason)
	if in.Res.err != nil {
		fmt.Fprintf(&t, "Last error: %s\r\n", in.Res.err)
	}
	if in.Res.requestID != "" {
		fmt.Fprintf(&t, "Graph request-id: %s (quote it to Microsoft support)\r\n", in.Res.requestID)
	}
	if in.Res.hint != "" {
		fmt.Fprintf(&t, "\r\nWhat to do: %s\r\n", in.Res.hint)
	}
	if in.Kind == noticeFailed {
		fmt.Fprintf(&t, "\r\nThe message is kept in %s. Once the cause is fixed,\r\n", in.Kept)
		fmt.Fprintf(&t, "\"graphrelay queue requeue %s\" sends it again; \"graphrelay queue delete %s\" discards it.\r\n", env.ID, env.ID)
	}
	if size > noticeAttachLimit {
		fmt.Fprintf(&t, "\r\nThe original (%d bytes) is too large to attach; its header is attached instead.\r\n", size)
	} else {
		fmt.Fprintf(&t, "\r\nThe original message is attached.\r\n")
	}
	return t.String()
}

// noticeHeaderLimit bounds the original's header block that a notice
// reads and, for a large original, attaches.
const noticeHeaderLimit = 1 << 20

// readHeaderBlock returns the original's header block (up to and
// including the line that ends it, or its first noticeHeaderLimit bytes)
// and its fields, split by mailhdr.ReadBlock like everywhere else, so a
// notice names the subject and sender the relay and the policy saw.
func readHeaderBlock(orig io.ReaderAt, size int64) ([]byte, msgtextproto.Header, error) {
	head := make([]byte, min(size, noticeHeaderLimit))
	if _, err := orig.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, msgtextproto.Header{}, err
	}
	b := mailhdr.ReadBlock(head, true, noticeHeaderLimit)
	return head[:b.BodyOffset], b.Header, nil
}

// formatSenders writes the header From addresses for the notice text.
func formatSenders(list []mailhdr.Address) string {
	parts := make([]string, 0, len(list))
	for _, a := range list {
		if a.Name != "" {
			parts = append(parts, mailhdr.CleanDisplayName(a.Name)+" <"+a.Address+">")
		} else {
			parts = append(parts, a.Address)
		}
	}
	return strings.Join(parts, ", ")
}

func is7bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
