package smtpd

import (
	"net/netip"
	"strings"
)

// validPath reports whether addr, as go-smtp hands it over without angle
// brackets, is a usable mailbox: a local part and a domain (a host name,
// possibly internationalised, or an address literal). go-smtp accepts
// "<a>" and "<a@>"; neither can be delivered, so they are refused at the
// command instead of failing at Graph.
func validPath(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return false
	}
	local, domain := addr[:at], addr[at+1:]
	if len(local) > 64*4 || len(domain) > 255 || strings.ContainsAny(addr, " \t\r\n<>") {
		return false
	}
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		lit := strings.TrimPrefix(domain[1:len(domain)-1], "IPv6:")
		_, err := netip.ParseAddr(lit)
		return err == nil
	}
	for _, label := range strings.Split(strings.TrimSuffix(domain, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if r < 0x80 && !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}
