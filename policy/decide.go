package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// Kind says why the policy refused, which decides the SMTP reply.
type Kind int

const (
	// AuthRequired: a rule would match an authenticated client (530 5.7.0).
	AuthRequired Kind = iota + 1
	// SenderDenied: no rule allows this client and envelope sender, or a
	// reject rule matched (550 5.7.1).
	SenderDenied
	// RelayDenied: a recipient is outside the rule's allowed recipients
	// (550 5.7.1 relay not permitted).
	RelayDenied
	// TooManyRecipients: over the rule's limit (452 4.5.3 at RCPT, where
	// the client can send the rest in another transaction; 550 5.5.3 at
	// the end of DATA, where a retry of the same message can only fail
	// again).
	TooManyRecipients
	// FromDenied: the header From is not allowed by the rule (550 5.7.1).
	FromDenied
)

// Error is a policy refusal. Reason is safe to show to the client: it
// names only what the client itself sent.
type Error struct {
	Kind   Kind
	Reason string
	Rule   string // the deciding rule, "" when none matched
	// AtData marks a refusal decided at the end of DATA, with the whole
	// transaction known: nothing the client can retry changes it.
	AtData bool
}

func (e *Error) Error() string {
	if e.Rule != "" {
		return e.Reason + " (" + e.Rule + ")"
	}
	return e.Reason
}

// Pending is a transaction between MAIL and the end of DATA: the rules
// that may still decide it.
type Pending struct {
	in         Input
	candidates []*rule
}

// Mail checks the client and envelope sender at MAIL time.
func (p *Policy) Mail(in Input) (*Pending, error) {
	pd := &Pending{in: in}
	authWouldHelp := false
	notMailbox := "" // the first "sender" rule that verified no mailbox
	for i := range p.rules {
		r := &p.rules[i]
		if !r.matchConn(in) {
			if in.AuthUser == "" && r.authUser != "" && r.matchConnIgnoringAuth(in) && r.sender.match(in.Sender) {
				authWouldHelp = true
			}
			continue
		}
		if !r.sender.match(in.Sender) {
			continue
		}
		if r.from != FromReject {
			if _, ok := p.target(r, in); !ok {
				// A "sender" rule, but nothing it verified is an allowed
				// mailbox; the header From, unverified, cannot help.
				if notMailbox == "" {
					notMailbox = r.label
				}
				continue
			}
		}
		if r.from == FromReject && r.headerFrom.any && len(pd.candidates) == 0 {
			return nil, &Error{Kind: SenderDenied, Reason: fmt.Sprintf("sender <%s> not permitted", in.Sender), Rule: r.label}
		}
		pd.candidates = append(pd.candidates, r)
		// A rule that cannot fail at DATA ends the search: later rules are
		// never reached for this message.
		if r.headerFrom.any && r.mailbox != mailboxSender {
			break
		}
	}
	if len(pd.candidates) == 0 {
		if authWouldHelp {
			return nil, &Error{Kind: AuthRequired, Reason: "authentication required"}
		}
		if notMailbox != "" {
			return nil, &Error{Kind: SenderDenied, Reason: fmt.Sprintf("sender <%s> is not a mailbox this client may send as", in.Sender), Rule: notMailbox}
		}
		return nil, &Error{Kind: SenderDenied, Reason: fmt.Sprintf("sender <%s> not permitted from this client", in.Sender)}
	}
	return pd, nil
}

// Rcpt checks one recipient; n counts the recipients including this one.
func (p *Policy) Rcpt(pd *Pending, rcpt string, n int) error {
	if relayHack(rcpt) {
		return &Error{Kind: RelayDenied, Reason: "relay not permitted"}
	}
	allowed, limit := false, 0
	for _, r := range pd.candidates {
		if r.from == FromReject {
			continue
		}
		if r.recipients.allows(rcpt) {
			allowed = true
		}
		limit = max(limit, p.limit(r))
	}
	if !allowed {
		return &Error{Kind: RelayDenied, Reason: "relay not permitted"}
	}
	if n > limit {
		return &Error{Kind: TooManyRecipients, Reason: fmt.Sprintf("too many recipients (at most %d)", limit)}
	}
	return nil
}

func (p *Policy) limit(r *rule) int {
	if r.maxRcpts > 0 && r.maxRcpts < p.maxRcpts {
		return r.maxRcpts
	}
	return p.maxRcpts
}

// Data decides at the end of DATA, once the header From is known.
func (p *Policy) Data(pd *Pending, headerFrom []Address, recipients []string) (Decision, error) {
	d, err := p.data(pd, headerFrom, recipients)
	if pe, ok := As(err); ok {
		pe.AtData = true
	}
	return d, err
}

func (p *Policy) data(pd *Pending, headerFrom []Address, recipients []string) (Decision, error) {
	for _, r := range pd.candidates {
		if !r.matchHeaderFrom(headerFrom) {
			continue
		}
		if r.from == FromReject {
			return Decision{}, &Error{Kind: FromDenied, Reason: "sender not permitted", Rule: r.label}
		}
		mb, _ := p.target(r, pd.in) // resolvable: Mail kept only such candidates
		for _, rc := range recipients {
			if !r.recipients.allows(rc) {
				return Decision{}, &Error{Kind: RelayDenied, Reason: fmt.Sprintf("relay to <%s> not permitted", rc), Rule: r.label}
			}
		}
		if len(recipients) > p.limit(r) {
			return Decision{}, &Error{Kind: TooManyRecipients, Reason: fmt.Sprintf("too many recipients (at most %d)", p.limit(r)), Rule: r.label}
		}
		d := Decision{Rule: r.label, RuleIndex: r.index, Mailbox: p.mailboxes[mb], Format: r.format, MessagesPerMinute: r.perMinute}
		fromIsMailbox := len(headerFrom) == 1 && Normalize(headerFrom[0].Address) == mb
		switch {
		case fromIsMailbox:
			d.From, d.FromName = FromKeep, cleanDisplayName(headerFrom[0].Name)
		case r.from == FromKeep:
			return Decision{}, &Error{Kind: FromDenied,
				Reason: fmt.Sprintf("header From must be <%s>", p.mailboxes[mb].Address), Rule: r.label}
		default:
			d.From = FromRewrite
			d.FromName, d.ReplyTo = rewrittenFrom(headerFrom, pd.in.Sender)
		}
		return d, nil
	}
	return Decision{}, &Error{Kind: FromDenied, Reason: "header From not permitted for this sender"}
}

// target resolves the mailbox a rule sends as. For "sender" it is the
// identity the rule verified: the authenticated user's own address when
// the rule requires AUTH and the user name is an allowed mailbox, else the
// envelope sender the rule's sender pattern matched when that is an
// allowed mailbox. The header From never chooses the mailbox: it is a
// claim no rule can verify, and letting it choose would let a client that
// is allowed one mailbox send as any other. A header From that differs
// from the mailbox is the rule's From handling's business (keep refuses,
// rewrite rewrites).
func (p *Policy) target(r *rule, in Input) (string, bool) {
	if r.mailbox != mailboxSender {
		return r.mailbox, true
	}
	if r.authUser != "" && in.AuthUser != "" {
		if _, ok := p.mailboxes[Normalize(in.AuthUser)]; ok {
			return Normalize(in.AuthUser), true
		}
	}
	if in.Sender != "" && r.sender.match(in.Sender) {
		if _, ok := p.mailboxes[Normalize(in.Sender)]; ok {
			return Normalize(in.Sender), true
		}
	}
	return "", false
}

func (r *rule) matchConn(in Input) bool {
	if !r.matchConnIgnoringAuth(in) {
		return false
	}
	switch r.authUser {
	case "":
		return true
	case "*":
		return in.AuthUser != ""
	}
	return in.AuthUser == r.authUser
}

func (r *rule) matchConnIgnoringAuth(in Input) bool {
	if r.listener != "" && r.listener != in.Listener {
		return false
	}
	if len(r.networks) == 0 {
		return true
	}
	ip := in.ClientIP.Unmap()
	for _, n := range r.networks {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// matchHeaderFrom requires every From address to match, so a second
// address cannot ride along on an allowed first one.
func (r *rule) matchHeaderFrom(from []Address) bool {
	if r.headerFrom.any {
		return true
	}
	if len(from) == 0 {
		return false
	}
	for _, a := range from {
		if !r.headerFrom.match(a.Address) {
			return false
		}
	}
	return true
}

// rewrittenFrom builds the display name that keeps the original sender
// visible, "MFP 2nd floor (scanner at printer.local)", and the address for
// Reply-To. The '@' is spelt out because Graph refuses or misreads display
// names that contain one (SMTP2Graph #28: ErrorSendAsDenied).
func rewrittenFrom(headerFrom []Address, sender string) (name, replyTo string) {
	orig := Address{Address: sender}
	if len(headerFrom) > 0 && headerFrom[0].Address != "" {
		orig = headerFrom[0]
	}
	if orig.Address == "" {
		return cleanDisplayName(orig.Name), ""
	}
	addr := strings.ReplaceAll(orig.Address, "@", " at ")
	n := strings.TrimSpace(orig.Name)
	if n == "" || Normalize(n) == Normalize(orig.Address) {
		return addr, orig.Address
	}
	return cleanDisplayName(n) + " (" + addr + ")", orig.Address
}

// cleanDisplayName removes what Graph cannot carry in a display name,
// at signs and their lookalikes included (mailhdr.CleanDisplayName).
func cleanDisplayName(n string) string {
	return mailhdr.CleanDisplayName(n)
}

// relayHack spots the old ways of smuggling a relay through a local part:
// percent hacks (user%other.example@here), bang paths (other!user),
// quoted addresses with an inner @, and source routes (@a:user@b). None of
// them is a real mailbox at an allowed domain, and open-relay scanners try
// them all.
func relayHack(rcpt string) bool {
	a := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(rcpt), "<"), ">")
	if strings.HasPrefix(a, "@") || strings.Count(a, "@") != 1 {
		return true
	}
	local := a[:strings.LastIndexByte(a, '@')]
	return strings.ContainsAny(local, "%!\"\\:")
}

// As extracts a policy refusal from err.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
