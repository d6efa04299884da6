package graphtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
)

// parseMIMEBody decodes a text/plain sendMail or draft body: the whole RFC
// 5322 message, base64-encoded, line wrapping allowed (graph-api.md §1.7).
func parseMIMEBody(body []byte) ([]byte, Message, *graphError) {
	clean := bytes.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', ' ', '\t':
			return -1
		}
		return r
	}, body)
	raw, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil {
		return nil, Message{}, badRequest("ErrorMimeContentInvalidBase64String", invalidMIMEBase64Message)
	}
	msg, gerr := parseMIMEMessage(raw)
	if gerr != nil {
		return nil, Message{}, gerr
	}
	return raw, msg, nil
}

func invalidMIME() *graphError { return badRequest("ErrorMimeContentInvalid", invalidMIMEMessage) }

// parseMIMEMessage extracts what Exchange copies into message properties:
// addressing headers, subject, importance, receipts, X- headers, the body
// and the attachments.
func parseMIMEMessage(raw []byte) (Message, *graphError) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return Message{}, invalidMIME()
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil || len(m.Header) == 0 {
		return Message{}, invalidMIME()
	}
	msg := Message{BodyType: "text", Importance: "normal"}
	dec := new(mime.WordDecoder)
	msg.Subject = decodeHeaderWords(dec, m.Header.Get("Subject"))

	var gerr *graphError
	if msg.From, gerr = singleAddress(m.Header, "From"); gerr != nil {
		return Message{}, gerr
	}
	if msg.Sender, gerr = singleAddress(m.Header, "Sender"); gerr != nil {
		return Message{}, gerr
	}
	for _, f := range []struct {
		name string
		dst  *[]Address
	}{{"To", &msg.To}, {"Cc", &msg.Cc}, {"Bcc", &msg.Bcc}, {"Reply-To", &msg.ReplyTo}} {
		if *f.dst, gerr = addressList(m.Header, f.name); gerr != nil {
			return Message{}, gerr
		}
	}
	switch imp := strings.ToLower(strings.TrimSpace(m.Header.Get("Importance"))); imp {
	case "low", "normal", "high":
		msg.Importance = imp
	}
	msg.InternetMessageID = strings.TrimSpace(m.Header.Get("Message-Id"))
	msg.ReadReceipt = m.Header.Get("Disposition-Notification-To") != ""
	msg.DeliveryReceipt = m.Header.Get("Return-Receipt-To") != ""
	// Only X- headers survive MIME submission as custom headers
	// (graph-api.md §1.7), so only they are reported as Headers.
	for name, values := range m.Header {
		if len(name) > 2 && strings.EqualFold(name[:2], "x-") {
			for _, v := range values {
				msg.Headers = append(msg.Headers, Header{Name: name, Value: decodeHeaderWords(dec, v)})
			}
		}
	}
	sortHeaders(msg.Headers)

	w := &mimeWalker{dec: dec}
	if err := w.walk(m.Header, m.Body, 0); err != nil {
		return Message{}, invalidMIME()
	}
	switch {
	case w.html != nil:
		msg.BodyType, msg.Body = "html", string(w.html)
	case w.text != nil:
		msg.Body = string(w.text)
	}
	msg.Attachments = w.attachments
	return msg, nil
}

func decodeHeaderWords(dec *mime.WordDecoder, v string) string {
	if d, err := dec.DecodeHeader(v); err == nil {
		return d
	}
	return v
}

func singleAddress(h mail.Header, name string) (*Address, *graphError) {
	if h.Get(name) == "" {
		return nil, nil
	}
	list, err := h.AddressList(name)
	if err != nil || len(list) == 0 {
		return nil, invalidMIME()
	}
	return &Address{Name: list[0].Name, Address: list[0].Address}, nil
}

func addressList(h mail.Header, name string) ([]Address, *graphError) {
	if strings.TrimSpace(h.Get(name)) == "" {
		return nil, nil
	}
	list, err := h.AddressList(name)
	if err != nil {
		return nil, badRequest("ErrorInvalidRecipients", invalidRecipientsMessage)
	}
	out := make([]Address, 0, len(list))
	for _, a := range list {
		out = append(out, Address{Name: a.Name, Address: a.Address})
	}
	return out, nil
}

// headerGetter is the part of a MIME header the walker needs; both
// mail.Header and textproto.MIMEHeader provide it.
type headerGetter interface{ Get(string) string }

// mimeWalker collects the first text/plain and text/html bodies and every
// attachment from a MIME tree.
type mimeWalker struct {
	dec         *mime.WordDecoder
	text, html  []byte
	attachments []Attachment
}

const maxMIMEDepth = 20

func (w *mimeWalker) walk(h headerGetter, body io.Reader, depth int) error {
	if depth > maxMIMEDepth {
		return errors.New("MIME nesting too deep")
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mt, "multipart/") {
		boundary := params["boundary"]
		if boundary == "" {
			return errors.New("multipart without boundary")
		}
		mr := multipart.NewReader(body, boundary)
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := w.walk(p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}
	content, err := decodeTransfer(h.Get("Content-Transfer-Encoding"), body)
	if err != nil {
		return err
	}
	disposition, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	name = decodeHeaderWords(w.dec, name)
	isText := mt == "text/plain" || mt == "text/html"
	if isText && disposition != "attachment" && name == "" {
		if mt == "text/html" && w.html == nil {
			w.html = content
			return nil
		}
		if mt == "text/plain" && w.text == nil {
			w.text = content
			return nil
		}
	}
	w.attachments = append(w.attachments, Attachment{
		Name:        name,
		ContentType: mt,
		ContentID:   strings.Trim(strings.TrimSpace(h.Get("Content-Id")), "<>"),
		IsInline:    disposition == "inline" || (disposition == "" && h.Get("Content-Id") != ""),
		Content:     content,
	})
	return nil
}

func decodeTransfer(cte string, r io.Reader) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		raw, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		clean := bytes.Map(func(c rune) rune {
			switch c {
			case '\r', '\n', ' ', '\t':
				return -1
			}
			return c
		}, raw)
		return base64.StdEncoding.DecodeString(string(clean))
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(r))
	}
	return io.ReadAll(r)
}

// sortHeaders orders headers by name because map iteration order is random
// and recordings should be stable.
func sortHeaders(hs []Header) {
	slices.SortStableFunc(hs, func(a, b Header) int { return strings.Compare(a.Name, b.Name) })
}
