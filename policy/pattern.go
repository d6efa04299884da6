package policy

import (
	"fmt"
	"strings"
)

// pattern matches an address: "" or "*" (anything), "*@domain", or an exact
// address.
type pattern struct {
	any    bool
	domain string // for *@domain
	exact  string
}

func parsePattern(s string) (pattern, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "*":
		return pattern{any: true}, nil
	case strings.HasPrefix(s, "*@"):
		d := normalizeDomain(s[2:])
		if d == "" || strings.ContainsAny(d, "@* ") {
			return pattern{}, fmt.Errorf("%q is not a valid *@domain pattern", s)
		}
		return pattern{domain: d}, nil
	case strings.Count(s, "@") == 1 && !strings.ContainsAny(s, "* ") && !strings.HasPrefix(s, "@") && !strings.HasSuffix(s, "@"):
		return pattern{exact: Normalize(s)}, nil
	}
	return pattern{}, fmt.Errorf("%q is not an address pattern (use an address, *@domain or *)", s)
}

func (p pattern) match(addr string) bool {
	switch {
	case p.any:
		return true
	case p.domain != "":
		return addr != "" && domainOf(addr) == p.domain
	}
	return addr != "" && Normalize(addr) == p.exact
}

// covers reports whether p matches everything q matches.
func (p pattern) covers(q pattern) bool {
	switch {
	case p.any:
		return true
	case q.any:
		return false
	case p.domain != "":
		return q.domain == p.domain || (q.exact != "" && domainOf(q.exact) == p.domain)
	}
	return q.exact != "" && q.exact == p.exact
}

func (p pattern) String() string {
	switch {
	case p.any:
		return "*"
	case p.domain != "":
		return "*@" + p.domain
	}
	return p.exact
}

// recipientList restricts recipients to addresses and domains.
type recipientList struct {
	all       bool
	addresses map[string]bool
	domains   map[string]bool
}

// parseRecipients compiles a rule's recipients. An empty list allows no
// one; compile passes the mailboxes' domains for a rule that lists none.
func parseRecipients(list []string) (recipientList, error) {
	r := recipientList{addresses: map[string]bool{}, domains: map[string]bool{}}
	for _, s := range list {
		s = strings.TrimSpace(s)
		switch {
		case s == "*":
			r.all = true
		case strings.HasPrefix(s, "*@"):
			r.domains[normalizeDomain(s[2:])] = true
		case strings.HasPrefix(s, "@"):
			r.domains[normalizeDomain(s[1:])] = true
		case strings.Contains(s, "@"):
			r.addresses[Normalize(s)] = true
		case s != "" && !strings.ContainsAny(s, "* "):
			r.domains[normalizeDomain(s)] = true
		default:
			return recipientList{}, fmt.Errorf("%q is not a recipient address or domain", s)
		}
	}
	return r, nil
}

func (r recipientList) allows(addr string) bool {
	return r.all || r.addresses[Normalize(addr)] || r.domains[domainOf(addr)]
}
