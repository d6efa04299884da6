package convert

import (
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// mapRecipients fills to/cc/bccRecipients and replyTo.
//
// The SMTP envelope decides who receives the message: each RCPT TO address,
// in envelope order and once, goes to toRecipients if the To header lists
// it, else to ccRecipients if Cc lists it, else to bccRecipients (Bcc
// exists only in the envelope). Header addresses that are not envelope
// recipients receive nothing: the client did not ask for them, and a relay
// that mailed them would be an open relay by proxy. Display names come from
// the header entry with the same address.
//
// Addresses are compared case-insensitively in the local part as well as
// the domain. RFC 5321 allows case-sensitive local parts, but Exchange
// Online treats them case-insensitively, and a false mismatch would move a
// visible To recipient into Bcc, which is worse than the converse.
//
// A caller with no envelope (a re-send tool) gets the header To, Cc and Bcc
// as they are, each address once.
func (c *converter) mapRecipients(h *textproto.Header, env Envelope, m *graph.Message) {
	m.ReplyTo = recipientsOf(c.replyTo(h, env.QualifyDomain), map[string]bool{})
	to, cc, bcc := c.addresses(h, "To"), c.addresses(h, "Cc"), c.addresses(h, "Bcc")
	if len(envelopeAddrs(env)) == 0 {
		seen := make(map[string]bool)
		m.ToRecipients, m.CcRecipients, m.BccRecipients = recipientsOf(to, seen), recipientsOf(cc, seen), recipientsOf(bcc, seen)
		return
	}
	type entry struct {
		kind int // 0 To, 1 Cc, 2 Bcc
		name string
	}
	known := make(map[string]entry)
	for kind, list := range [][]mailhdr.Address{to, cc, bcc} {
		for _, a := range list {
			key := addrKey(a.Address)
			if e, ok := known[key]; !ok || (e.name == "" && e.kind == kind) {
				known[key] = entry{kind, a.Name}
			}
		}
	}
	seen := make(map[string]bool)
	for _, addr := range envelopeAddrs(env) {
		key := addrKey(addr)
		if seen[key] {
			continue
		}
		seen[key] = true
		e, ok := known[key]
		if !ok {
			e.kind = 2
		}
		r := graph.Recipient{EmailAddress: graph.EmailAddress{Address: addr, Name: e.name}}
		switch e.kind {
		case 0:
			m.ToRecipients = append(m.ToRecipients, r)
		case 1:
			m.CcRecipients = append(m.CcRecipients, r)
		default:
			m.BccRecipients = append(m.BccRecipients, r)
		}
	}
}

// envelopeAddrs returns the non-empty RCPT TO addresses without angle
// brackets or blanks.
func envelopeAddrs(env Envelope) []string {
	var out []string
	for _, a := range env.Recipients {
		a = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(a), "<"), ">"))
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

// addrKey is the comparison form of an address (see mapRecipients): the
// policy's, so an envelope recipient and its header entry match whatever
// spelling of the domain (U-label or A-label) each uses.
func addrKey(a string) string {
	return mailhdr.Key(a)
}

// replyTo returns the Reply-To addresses that can be sent: an address
// without a domain qualified with domain, each in its canonical form.
// Anything else (an encoded word or a phrase where the address should be,
// a lookalike spelling) is left out with a warning: Graph refuses a
// replyTo that is not an address, and a wrong one would send replies
// astray.
func (c *converter) replyTo(h *textproto.Header, domain string) []mailhdr.Address {
	var out []mailhdr.Address
	for _, a := range c.addresses(h, "Reply-To") {
		addr, err := mailhdr.Canonical(mailhdr.Qualify(a.Address, domain))
		if err != nil || strings.HasPrefix(addr, `"`) {
			c.warn("Reply-To holds something that is not a usable address; left out")
			continue
		}
		a.Address = addr
		out = append(out, a)
	}
	return out
}

// addresses parses every field named key (To may appear more than once in
// broken mail) and returns the mailboxes with sanitised display names.
func (c *converter) addresses(h *textproto.Header, key string) []mailhdr.Address {
	var out []mailhdr.Address
	for _, v := range h.Values(key) {
		list, err := mailhdr.ParseAddressList(v)
		if err != nil {
			c.warn("unparsable %s header", key)
		}
		for _, a := range list {
			a.Name = mailhdr.CleanDisplayName(sanitizeLine(a.Name))
			out = append(out, a)
		}
	}
	return out
}

// recipientsOf converts addresses to Graph recipients, skipping those
// already in seen (which it updates).
func recipientsOf(list []mailhdr.Address, seen map[string]bool) []graph.Recipient {
	var out []graph.Recipient
	for _, a := range list {
		if k := addrKey(a.Address); !seen[k] {
			seen[k] = true
			out = append(out, graph.Recipient{EmailAddress: graph.EmailAddress{Address: a.Address, Name: a.Name}})
		}
	}
	return out
}
