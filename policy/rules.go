package policy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
)

// mailboxSender is the rule target "the identity the rule verified, when it
// is an allowed mailbox": the authenticated user's own address, else the
// envelope sender the rule matched (see Policy.target). Never the header
// From.
const mailboxSender = config.MailboxSender

type rule struct {
	index      int
	label      string // "rules[2] (scanners)" or "implicit rule: ..."
	listener   string
	networks   []netip.Prefix
	authUser   string // "", "*" or a name
	sender     pattern
	headerFrom pattern
	mailbox    string // normalised address, or mailboxSender
	from       string
	recipients recipientList
	maxRcpts   int
	perMinute  int
	format     string
	// localOnly: every listener the rule can match admits only loopback
	// clients, so whoever it matches is a program on this host.
	localOnly bool
}

// Policy is the compiled rule set. It is immutable and safe for concurrent
// use.
type Policy struct {
	rules     []rule
	mailboxes map[string]envelope.Mailbox // by normalised address
	// domains are the mailboxes' own domains: the recipients of a rule
	// that does not list its own.
	domains  []string
	maxRcpts int // smtp.max_recipients
	implicit bool
}

// New compiles cfg's rules, or the implicit rules when none are written.
// It returns every configuration error at once, and warnings (unreachable
// rules, overlapping networks) for the startup log. knownUser reports
// whether an SMTP user exists, for warnings about rules naming unknown
// users; nil skips that check.
func New(cfg *config.Config, knownUser func(string) bool) (*Policy, []string, error) {
	p := &Policy{mailboxes: map[string]envelope.Mailbox{}, maxRcpts: cfg.SMTP.MaxRecipients}
	for _, m := range cfg.Mailboxes {
		p.mailboxes[Normalize(m.Address)] = envelope.Mailbox{Address: m.Address, ID: m.ID}
	}
	p.domains = mailboxDomains(cfg)
	rules := cfg.Rules
	if len(rules) == 0 {
		rules = implicitRules(cfg)
		p.implicit = true
	}
	listeners := map[string]bool{}
	for _, l := range cfg.SMTP.Listeners {
		listeners[l.Name] = true
	}
	var errs []string
	for i, rc := range rules {
		r, rerrs := p.compile(i, rc, cfg.Delivery.Format, listeners)
		errs = append(errs, rerrs...)
		r.localOnly = localOnly(cfg.SMTP.Listeners, r.listener)
		p.rules = append(p.rules, r)
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("%d rule problem(s):\n  %s", len(errs), strings.Join(errs, "\n  "))
	}
	return p, p.warnings(knownUser), nil
}

// implicitRules keep the simple setup working without rules: send as the
// envelope sender when it is an allowed mailbox, else as the default
// mailbox, with the From rewritten so the recipient still sees who sent
// it. Like every rule without recipients they may send only to the
// mailboxes' own domains (compile), so an unconfigured relay cannot be used
// to send to the outside world.
func implicitRules(cfg *config.Config) []config.Rule {
	rs := []config.Rule{{Name: "implicit: sender is an allowed mailbox", Mailbox: mailboxSender, From: config.FromRewrite}}
	if cfg.DefaultMailbox != "" {
		rs = append(rs, config.Rule{Name: "implicit: default_mailbox", Mailbox: cfg.DefaultMailbox, From: config.FromRewrite})
	}
	return rs
}

// mailboxDomains lists the mailboxes' own domains, each once, in the order
// the mailboxes are written.
func mailboxDomains(cfg *config.Config) []string {
	var domains []string
	seen := map[string]bool{}
	for _, m := range cfg.Mailboxes {
		if d := domainOf(m.Address); d != "" && !seen[d] {
			seen[d] = true
			domains = append(domains, d)
		}
	}
	return domains
}

func (p *Policy) compile(i int, rc config.Rule, defaultFormat string, listeners map[string]bool) (rule, []string) {
	r := rule{index: i, label: fmt.Sprintf("rules[%d]", i), listener: rc.Listener, authUser: strings.TrimSpace(rc.AuthUser),
		maxRcpts: rc.MaxRecipients, perMinute: rc.MessagesPerMinute, from: strings.ToLower(rc.From), format: rc.Format}
	if rc.Name != "" {
		r.label += " (" + rc.Name + ")"
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, r.label+": "+fmt.Sprintf(format, args...)) }
	if rc.Listener != "" && !listeners[rc.Listener] {
		bad("listener %q is not a configured listener", rc.Listener)
	}
	for _, n := range rc.Networks {
		pfx, err := config.ParseNetwork(n)
		if err != nil {
			bad("%v", err)
			continue
		}
		r.networks = append(r.networks, pfx)
	}
	var err error
	if r.sender, err = parsePattern(rc.Sender); err != nil {
		bad("sender: %v", err)
	}
	if r.headerFrom, err = parsePattern(rc.HeaderFrom); err != nil {
		bad("header_from: %v", err)
	}
	// A rule without recipients may send only to the mailboxes' own
	// domains, like the implicit rules: forgetting the line must not make
	// an open relay. Other domains need an explicit "*" or their names.
	recipients := rc.Recipients
	if len(recipients) == 0 {
		recipients = p.domains
	}
	if r.recipients, err = parseRecipients(recipients); err != nil {
		bad("recipients: %v", err)
	}
	if r.from == "" {
		r.from = FromKeep
	}
	switch r.from {
	case FromKeep, FromRewrite, FromReject:
	default:
		bad("from must be keep, rewrite or reject, not %q", rc.From)
	}
	if r.format == "" {
		r.format = defaultFormat
	}
	if r.format != envelope.FormatJSON && r.format != envelope.FormatMIME {
		bad("format must be json or mime, not %q", rc.Format)
	}
	if r.maxRcpts < 0 || r.perMinute < 0 {
		bad("max_recipients and messages_per_minute cannot be negative")
	}
	switch mb := strings.TrimSpace(rc.Mailbox); {
	case r.from == FromReject:
		// A reject rule refuses what it matches; it needs no mailbox.
	case mb == mailboxSender:
		r.mailbox = mailboxSender
	case mb == "":
		bad("mailbox is required: an address from mailboxes, or %q", mailboxSender)
	default:
		if _, ok := p.mailboxes[Normalize(mb)]; !ok {
			bad("mailbox %s is not in mailboxes; graphrelay only sends as listed mailboxes", mb)
		}
		r.mailbox = Normalize(mb)
	}
	return r, errs
}

// warnings finds rules that relay to any domain or trust nothing but a
// claim, rules that can never match because an earlier rule matches
// everything they match, and networks that overlap.
func (p *Policy) warnings(knownUser func(string) bool) []string {
	var ws []string
	for j, b := range p.rules {
		ws = append(ws, b.trustWarnings(p.implicit)...)
		if knownUser != nil && b.authUser != "" && b.authUser != "*" && !knownUser(b.authUser) {
			ws = append(ws, fmt.Sprintf("%s: auth_user %q is not a configured user, so the rule never matches", b.label, b.authUser))
		}
		for k := range b.networks {
			for l := k + 1; l < len(b.networks); l++ {
				if b.networks[k].Overlaps(b.networks[l]) {
					ws = append(ws, fmt.Sprintf("%s: networks %s and %s overlap", b.label, b.networks[k], b.networks[l]))
				}
			}
		}
		for i := 0; i < j; i++ {
			a := p.rules[i]
			if a.covers(b) {
				ws = append(ws, fmt.Sprintf("%s is unreachable: %s matches every message it would match", b.label, a.label))
				break
			}
			if overlapping(a.networks, b.networks) && a.mailbox != b.mailbox {
				ws = append(ws, fmt.Sprintf("%s and %s have overlapping networks; for clients in the overlap %s is tried first", a.label, b.label, a.label))
			}
		}
	}
	return ws
}

// covers reports whether a matches every message b matches, making b
// unreachable behind it. A rule whose target is the sender matches only
// when the sender is an allowed mailbox, so it never covers another.
func (a rule) covers(b rule) bool {
	if a.mailbox == mailboxSender {
		return false
	}
	if a.listener != "" && a.listener != b.listener {
		return false
	}
	switch {
	case a.authUser == "":
	case a.authUser == "*":
		if b.authUser == "" {
			return false
		}
	case a.authUser != b.authUser:
		return false
	}
	if len(a.networks) > 0 {
		if len(b.networks) == 0 {
			return false
		}
		for _, bn := range b.networks {
			if !containsPrefix(a.networks, bn) {
				return false
			}
		}
	}
	return a.sender.covers(b.sender) && a.headerFrom.covers(b.headerFrom)
}

func containsPrefix(outer []netip.Prefix, inner netip.Prefix) bool {
	for _, o := range outer {
		if o.Bits() <= inner.Bits() && o.Contains(inner.Addr()) {
			return true
		}
	}
	return false
}

func overlapping(a, b []netip.Prefix) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Overlaps(y) {
				return true
			}
		}
	}
	return false
}

// trustWarnings names what makes a rule a risk to the tenant: recipients
// "*" (anyone the rule matches can send anywhere, as the company), and a
// match on nothing the client proved. A rule without networks or
// auth_user matches whoever reaches the listener; its sender and
// header_from patterns are only what the client claims, so anyone can
// claim them, unless only programs on this host can reach the rule's
// listeners. The implicit rules are left out: check reports them
// separately.
func (r rule) trustWarnings(implicit bool) []string {
	if implicit || r.from == FromReject {
		return nil
	}
	var ws []string
	if r.recipients.all {
		ws = append(ws, fmt.Sprintf("%s: recipients \"*\" relays to any domain: every client the rule matches can send to the whole internet as %s; list the domains or addresses it needs instead",
			r.label, r.mailboxLabel()))
	}
	if len(r.networks) == 0 && r.authUser == "" && !r.localOnly {
		claim := "nothing: it matches every client that reaches the listener"
		switch {
		case !r.sender.any && !r.headerFrom.any:
			claim = "the claimed envelope sender " + r.sender.String() + " and header From " + r.headerFrom.String()
		case !r.sender.any:
			claim = "the claimed envelope sender " + r.sender.String()
		case !r.headerFrom.any:
			claim = "the claimed header From " + r.headerFrom.String()
		}
		ws = append(ws, fmt.Sprintf("%s matches on %s, which any client can claim; add networks or auth_user so the rule trusts something the client proves",
			r.label, claim))
	}
	return ws
}

func (r rule) mailboxLabel() string {
	if r.mailbox == mailboxSender {
		return "the sender's mailbox"
	}
	return r.mailbox
}

// localOnly reports whether every listener a rule on listener ("" for any)
// can match admits only loopback clients. A listener without networks
// admits loopback only (config.LoopbackNetworks).
func localOnly(listeners []config.Listener, listener string) bool {
	seen := false
	for _, l := range listeners {
		if listener != "" && l.Name != listener {
			continue
		}
		seen = true
		for _, n := range l.Networks {
			pfx, err := config.ParseNetwork(n)
			if err != nil || !loopbackPrefix(pfx) {
				return false
			}
		}
	}
	return seen
}

func loopbackPrefix(p netip.Prefix) bool {
	a := p.Addr()
	if a.Is4() {
		return p.Bits() >= 8 && a.IsLoopback()
	}
	return p.Bits() == 128 && a.IsLoopback()
}
