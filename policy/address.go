package policy

import (
	"strings"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// Normalize returns the form addresses are compared in, mailhdr.Key: the
// canonical address (domain as lower-case A-label, so "bücher.example" and
// "xn--bcher-kva.example" are the same domain) in lower case, since
// Exchange treats local parts case-insensitively. smtpd refuses envelope
// addresses that have no canonical form, so what the policy compares is
// what is sent; a lookalike spelling ("ｃｏｎｔｏｓｏ.com") compares equal
// to nothing else.
func Normalize(addr string) string {
	return mailhdr.Key(addr)
}

// normalizeDomain is Normalize for a domain written in the configuration,
// where a trailing dot (a fully qualified name) is tolerated.
func normalizeDomain(d string) string {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	return mailhdr.DomainOf(mailhdr.Key("x@" + d))
}

// domainOf returns the normalised domain of an address, "" if it has none.
func domainOf(addr string) string {
	n := Normalize(addr)
	at := strings.LastIndexByte(n, '@')
	if at < 0 {
		return ""
	}
	return n[at+1:]
}
