// Package policy decides who may send, as which mailbox, to whom. It turns
// what a client is and claims (listener, IP, TLS, authenticated user,
// envelope sender, header From, recipients) into one decision: the mailbox
// to send as, how the From header is handled, which recipients are allowed,
// and the send format. It is pure logic with no I/O, so table tests cover
// the whole decision matrix.
//
// Rules are checked in order and the first match wins; no match means
// reject. A rule is narrowed down in three stages, as SMTP reveals more:
// at MAIL (listener, network, user, envelope sender), at RCPT (allowed
// recipients and their number), and at the end of DATA (header From). At
// RCPT the rule is not yet final, so a recipient is accepted if any
// remaining candidate allows it, and every recipient is checked again
// against the final rule at the end of DATA.
package policy

import (
	"net/netip"

	"github.com/graphrelay/graphrelay/envelope"
)

// Input is what is known about a client at MAIL time.
type Input struct {
	Listener string
	ClientIP netip.Addr
	TLS      bool
	AuthUser string // "" when not authenticated
	Sender   string // MAIL FROM; "" for the null sender <>
}

// Address is one header address.
type Address struct {
	Name    string
	Address string
}

// Decision is the outcome for one message.
type Decision struct {
	// Rule names the rule that decided, as "rules[2] (scanners)", for logs.
	Rule    string
	Mailbox envelope.Mailbox
	// From is keep or rewrite.
	From string
	// FromName is the display name to send with the mailbox address; empty
	// lets Graph use the mailbox's own name.
	FromName string
	// ReplyTo is the original sender address to put in Reply-To when the
	// message has none (From rewrite).
	ReplyTo string
	Format  string
	// MessagesPerMinute is the rule's rate limit; 0 means none.
	MessagesPerMinute int
	// RuleIndex identifies the rule for per-rule rate limiting.
	RuleIndex int
}

// Mailbox handling values, mirrored from config to keep this package's
// callers free of the config import.
const (
	FromKeep    = "keep"
	FromRewrite = "rewrite"
	FromReject  = "reject"
)
