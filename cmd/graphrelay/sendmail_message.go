package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// sendmailMaxInput bounds what "graphrelay sendmail" buffers from stdin.
// Graph refuses anything above 150 MB even through upload sessions, so a
// larger message can never be delivered; stopping here keeps a runaway
// pipe from exhausting memory first.
const sendmailMaxInput = 150 << 20

var errInputTooLarge = fmt.Errorf("the message exceeds %d MB, more than Microsoft Graph accepts", sendmailMaxInput>>20)

// readSendmailInput reads the message from stdin with every line ending
// normalised to CRLF, which SMTP requires and which cron, PHP and shell
// scripts never write. Without ignoreDots a line holding a single "." ends
// the input, as it always has for sendmail without -i; whatever follows it
// is ignored.
func readSendmailInput(r io.Reader, ignoreDots bool) ([]byte, error) {
	// The limit reader makes one endless line stop at the bound too.
	lr := &io.LimitedReader{R: r, N: sendmailMaxInput + 1}
	br := bufio.NewReaderSize(lr, 64<<10)
	var out bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if !ignoreDots && string(content) == "." {
				return out.Bytes(), nil
			}
			// A bare CR (old Mac line ending) inside the line also ends a
			// line: graphrelay refuses bare CR as a smuggling vector.
			out.Write(bytes.ReplaceAll(content, []byte("\r"), []byte("\r\n")))
			out.WriteString("\r\n")
			if out.Len() > sendmailMaxInput {
				return nil, errInputTooLarge
			}
		}
		if err == io.EOF {
			if lr.N == 0 {
				return nil, errInputTooLarge
			}
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// headerField is one header field as written, continuation lines included.
type headerField struct {
	name string // as written, compared case-insensitively
	raw  string // "Name: value\r\n" with any folded lines
}

func (f headerField) value() string {
	_, v, _ := strings.Cut(f.raw, ":")
	return strings.TrimSpace(v)
}

func (f headerField) is(name string) bool { return strings.EqualFold(f.name, name) }

// splitHeader splits a CRLF message into its header fields and its body
// with mailhdr.ReadBlock, the splitter the relay reads the message with.
// Like sendmail, the first line that is neither a field nor a continuation
// starts the body, so "echo text | sendmail root" still gets a proper
// header; a leading mbox "From " line is dropped: it is not part of the
// message.
func splitHeader(msg []byte) ([]headerField, []byte) {
	b := mailhdr.ReadBlock(msg, true, len(msg))
	var fields []headerField
	fs := b.Header.Fields()
	for fs.Next() {
		raw, err := fs.Raw()
		if err != nil {
			continue // unreachable: every field of ReadBlock has raw bytes
		}
		name, _, _ := strings.Cut(string(raw), ":")
		f := headerField{name: strings.TrimRight(name, " \t"), raw: string(raw)}
		if !strings.HasSuffix(f.raw, "\n") {
			f.raw += "\r\n"
		}
		fields = append(fields, f)
	}
	return fields, msg[b.BodyOffset:]
}

// qualifiedFields are the address fields whose addresses without a domain
// sendmail qualifies, as sendmail(8) rewrites the headers of locally
// submitted mail.
var qualifiedFields = []string{"From", "Sender", "Reply-To", "To", "Cc"}

// qualifyField returns f with every address that lacks a domain given
// domain ("From: root (Cron Daemon)" becomes "From: \"Cron Daemon\"
// <root@domain>"), and f unchanged when there is none.
func qualifyField(f headerField, domain string) headerField {
	qualified := false
	for _, n := range qualifiedFields {
		qualified = qualified || f.is(n)
	}
	if !qualified {
		return f
	}
	addrs, err := mailhdr.ParseAddressList(f.value())
	if err != nil {
		return f
	}
	changed := false
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		if q := qualify(a.Address, domain); q != a.Address {
			a.Address, changed = q, true
		}
		parts[i] = (&mail.Address{Name: a.Name, Address: a.Address}).String()
	}
	if !changed {
		return f
	}
	return headerField{name: f.name, raw: f.name + ": " + strings.Join(parts, ", ") + "\r\n"}
}

// composeParams is what composeMessage needs besides the input.
type composeParams struct {
	extract  bool   // -t: collect recipients from To, Cc and Bcc
	fullName string // -F
	// fromAddr is the address for an added From: the envelope sender, or
	// the invoking user when the envelope sender is null.
	fromAddr string
	host     string // names the Message-ID
	domain   string // qualifies addresses without a domain
	now      time.Time
}

// composeMessage turns sendmail input into the message graphrelay receives.
// It removes every Bcc field (a Bcc recipient must not be visible to the
// others, and with -t the Bcc addresses are already envelope recipients)
// and adds the From, Date and Message-ID fields a message lacks, as sendmail
// does, so the relay converts a well-formed message. It returns the
// addresses found in To, Cc and Bcc when p.extract is set.
func composeMessage(in []byte, p composeParams) (msg []byte, rcpts []string, err error) {
	fields, body := splitHeader(in)
	var out bytes.Buffer
	var hasFrom, hasDate, hasMsgID bool
	for _, f := range fields {
		f = qualifyField(f, p.domain)
		switch {
		case f.is("From"):
			hasFrom = true
		case f.is("Date"):
			hasDate = true
		case f.is("Message-ID"):
			hasMsgID = true
		}
		if p.extract && (f.is("To") || f.is("Cc") || f.is("Bcc")) {
			addrs, perr := mailhdr.ParseAddressList(f.value())
			if perr != nil {
				return nil, nil, fmt.Errorf("the %s header holds no usable address: %q", f.name, f.value())
			}
			for _, a := range addrs {
				rcpts = append(rcpts, qualify(a.Address, p.domain))
			}
		}
		if f.is("Bcc") {
			continue
		}
		out.WriteString(f.raw)
	}
	if !hasFrom {
		from := mail.Address{Name: p.fullName, Address: p.fromAddr}
		fmt.Fprintf(&out, "From: %s\r\n", from.String())
	}
	if !hasDate {
		fmt.Fprintf(&out, "Date: %s\r\n", p.now.Format(time.RFC1123Z))
	}
	if !hasMsgID {
		fmt.Fprintf(&out, "Message-ID: %s\r\n", newMessageID(p.now, p.host))
	}
	out.WriteString("\r\n")
	out.Write(body)
	return out.Bytes(), rcpts, nil
}

// newMessageID returns a unique "<time.random@host>" identifier.
func newMessageID(now time.Time, host string) string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("<%d.%s@%s>", now.Unix(), hex.EncodeToString(b[:]), host)
}

// qualify appends the qualifying domain (smtp.qualify_domain, else the
// local host name) to a bare user name ("root"), as sendmail does, so that
// the relay sees a full address.
func qualify(addr, domain string) string {
	return mailhdr.Qualify(addr, domain)
}
