// Package policy decides which configured shared mailbox a message may be
// sent as. It is pure logic with no I/O, so table tests cover it fully, and
// every sender-to-mailbox decision lives here and nowhere else.
package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
)

// Policy holds the allowed mailboxes and the default mailbox.
type Policy struct {
	mailboxes map[string]envelope.Mailbox // keyed by normalised address
	def       *envelope.Mailbox
}

// New builds a policy from the configured mailboxes. defaultMailbox may be
// empty, in which case mail that names no allowed mailbox is refused.
func New(mailboxes []config.Mailbox, defaultMailbox string) (*Policy, error) {
	p := &Policy{mailboxes: map[string]envelope.Mailbox{}}
	for _, m := range mailboxes {
		p.mailboxes[Normalize(m.Address)] = envelope.Mailbox{Address: m.Address, ID: m.ID}
	}
	if defaultMailbox != "" {
		m, ok := p.mailboxes[Normalize(defaultMailbox)]
		if !ok {
			return nil, fmt.Errorf("default mailbox %s is not an allowed mailbox", defaultMailbox)
		}
		p.def = &m
	}
	return p, nil
}

// Decision is the outcome for one message.
type Decision struct {
	Mailbox envelope.Mailbox
	// Why explains the choice for the log line.
	Why string
}

// ErrNoMailbox means the message names no allowed mailbox and there is no
// default to fall back to.
var ErrNoMailbox = errors.New("neither the header From nor the envelope sender is an allowed mailbox, and no default mailbox is configured")

// Decide picks the mailbox: the header From when it is an allowed mailbox
// (the address recipients see), else the envelope sender when it is one,
// else the default mailbox.
func (p *Policy) Decide(envelopeFrom string, headerFrom []string) (Decision, error) {
	for _, a := range headerFrom {
		if m, ok := p.mailboxes[Normalize(a)]; ok {
			return Decision{Mailbox: m, Why: "header From is an allowed mailbox"}, nil
		}
	}
	if m, ok := p.mailboxes[Normalize(envelopeFrom)]; ok {
		return Decision{Mailbox: m, Why: "envelope sender is an allowed mailbox"}, nil
	}
	if p.def != nil {
		return Decision{Mailbox: *p.def, Why: "sender is not an allowed mailbox; using the default mailbox"}, nil
	}
	return Decision{}, ErrNoMailbox
}

// Normalize returns the form addresses are compared in. Exchange treats
// the whole address case-insensitively, so graphrelay does too.
func Normalize(addr string) string {
	return strings.ToLower(strings.TrimSpace(addr))
}
