package policy

import (
	"strings"

	"golang.org/x/net/idna"
)

// Normalize returns the form addresses are compared in: the local part in
// lower case (Exchange treats it case-insensitively), and the domain in
// lower-case ASCII, with internationalised domains converted to punycode so
// "bücher.example" and "xn--bcher-kva.example" are the same domain.
func Normalize(addr string) string {
	addr = strings.TrimSpace(addr)
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "<"), ">")
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return strings.ToLower(addr)
	}
	return strings.ToLower(addr[:at]) + "@" + normalizeDomain(addr[at+1:])
}

func normalizeDomain(d string) string {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if a, err := idna.Lookup.ToASCII(d); err == nil && a != "" {
		return strings.ToLower(a)
	}
	return strings.ToLower(d)
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
