package mailhdr

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// AddressError says why an address cannot be used as written.
type AddressError struct {
	// Reason names the defect for the client and the log, in words that
	// never repeat the offending bytes.
	Reason string
	// NonCanonical is set when the address is well formed but written in a
	// Unicode form that maps onto another address (fullwidth letters, a
	// soft hyphen, a compatibility character): refusing it is a policy
	// decision (553) rather than a syntax error (501).
	NonCanonical bool
	// BadBytes is set when the address holds bytes no address may hold:
	// NUL, control characters or invalid UTF-8, a syntax error of the
	// command that carried it (501) rather than of the mailbox.
	BadBytes bool
}

func (e *AddressError) Error() string { return "mailhdr: " + e.Reason }

func syntaxErr(format string, a ...any) error {
	return &AddressError{Reason: fmt.Sprintf(format, a...)}
}

func badBytes(reason string) error {
	return &AddressError{Reason: reason, BadBytes: true}
}

func nonCanonical(format string, a ...any) error {
	return &AddressError{Reason: fmt.Sprintf(format, a...), NonCanonical: true}
}

// Canonical checks a mailbox address (local@domain, without angle
// brackets) and returns the one form graphrelay compares and sends: the
// local part as written (Exchange matches it case-insensitively, but a
// receiving system may not) and the domain in lower case, internationalised
// labels as punycode A-labels ("xn--bcher-kva.example"). A-labels are what
// every mail system accepts: a U-label domain needs SMTPUTF8 on every hop,
// and Exchange Online supports that only for some tenants and scenarios.
//
// It refuses, so that nothing is accepted that Graph would later refuse or
// deliver to another address than the one checked: control characters and
// NUL anywhere; a missing local part or domain; dots at the start or end
// of the local part or doubled; a domain with a trailing dot ("a@b.com."),
// an empty or over-long label, or characters outside letters, digits and
// hyphens; invalid punycode; and, as NonCanonical, Unicode that is not in
// its one canonical form: fullwidth and other compatibility characters
// ("ｃｏｎｔｏｓｏ.com", "a＠b"), invisible format characters (soft
// hyphen, zero-width space, bidirectional controls), unnormalised
// combining sequences. A quoted local part is accepted as written.
func Canonical(addr string) (string, error) {
	if !utf8.ValidString(addr) {
		return "", badBytes("the address is not valid UTF-8")
	}
	for _, r := range addr {
		switch {
		case r == 0:
			return "", badBytes("the address contains a NUL byte")
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return "", badBytes("the address contains a control character")
		}
	}
	at := strings.LastIndexByte(addr, '@')
	switch {
	case at < 0:
		return "", syntaxErr("the address has no domain")
	case at == 0:
		return "", syntaxErr("the address has no local part")
	case at == len(addr)-1:
		return "", syntaxErr("the address has no domain")
	}
	local, domain := addr[:at], addr[at+1:]
	if err := checkLocal(local); err != nil {
		return "", err
	}
	d, err := canonicalDomain(domain)
	if err != nil {
		return "", err
	}
	return local + "@" + d, nil
}

// Key is the form addresses are compared in: Canonical, then lower-cased,
// since Exchange Online treats local parts case-insensitively. An address
// Canonical refuses is only trimmed and lower-cased, so that it still
// compares equal to itself and to nothing else.
func Key(addr string) string {
	addr = strings.TrimSpace(addr)
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "<"), ">")
	if c, err := Canonical(addr); err == nil {
		addr = c
	}
	return strings.ToLower(addr)
}

// atextASCII are the ASCII characters of RFC 5322 atext besides letters and
// digits.
const atextASCII = "!#$%&'*+-/=?^_`{|}~"

func checkLocal(local string) error {
	if len(local) > 64*4 {
		return syntaxErr("the local part is too long")
	}
	if strings.HasPrefix(local, `"`) && strings.HasSuffix(local, `"`) && len(local) >= 2 {
		return nil
	}
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return syntaxErr("the local part starts or ends with a dot or has two in a row")
	}
	ascii := true
	for _, r := range local {
		switch {
		case r >= 0x80:
			ascii = false
			if unicode.In(r, unicode.Cf, unicode.Zs, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs) || r == utf8.RuneError {
				return nonCanonical("the local part contains an invisible or blank character")
			}
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.':
		case strings.ContainsRune(atextASCII, r):
		default:
			return syntaxErr("the local part contains a character that needs quoting")
		}
	}
	if !ascii && (!norm.NFC.IsNormalString(local) || norm.NFKC.String(local) != local) {
		return nonCanonical("the local part is not in Unicode normal form (fullwidth or compatibility characters)")
	}
	return nil
}

func canonicalDomainUncached(domain string) (string, error) {
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		lit := domain[1 : len(domain)-1]
		if len(lit) > 5 && strings.EqualFold(lit[:5], "IPv6:") {
			if a, err := netip.ParseAddr(lit[5:]); err == nil && a.Is6() {
				return "[IPv6:" + a.String() + "]", nil
			}
		} else if a, err := netip.ParseAddr(lit); err == nil && a.Is4() {
			return "[" + a.String() + "]", nil
		}
		return "", syntaxErr("the domain is not a valid address literal")
	}
	if strings.HasSuffix(domain, ".") {
		return "", syntaxErr("the domain ends with a dot")
	}
	if len(domain) > 255 {
		return "", syntaxErr("the domain is too long")
	}
	lower := strings.ToLower(domain)
	a, err := idna.Registration.ToASCII(lower)
	if err != nil {
		// Lookup maps what Registration refuses; if the mapped form is a
		// valid domain the client wrote a lookalike spelling of it.
		if _, lerr := idna.Lookup.ToASCII(domain); lerr == nil && !isASCII(domain) {
			return "", nonCanonical("the domain is not in Unicode normal form (fullwidth, compatibility or invisible characters)")
		}
		return "", syntaxErr("the domain is not a valid host name")
	}
	for _, label := range strings.Split(a, ".") {
		if label == "" || len(label) > 63 {
			return "", syntaxErr("the domain has an empty or over-long label")
		}
	}
	return a, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Qualify gives an address without a domain the domain given, as Postfix's
// append_at_myorigin and sendmail do for mail submitted on the local host
// ("root" becomes "root@host.example"). An address that has a domain, or
// an empty domain, leaves it as it is.
func Qualify(addr, domain string) string {
	if addr == "" || domain == "" || strings.Contains(addr, "@") {
		return addr
	}
	return addr + "@" + domain
}

// DomainOf returns the domain of an address, "" when it has none.
func DomainOf(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return addr[at+1:]
	}
	return ""
}

// atLookalikes are the characters that display as an at sign or that
// Unicode compatibility mapping turns into one.
var atLookalikes = strings.NewReplacer("@", " at ", "\uFF20", " at ", "\uFE6B", " at ")

// CleanDisplayName makes a display name safe to send to Graph: control
// characters become blanks, invisible format characters (zero-width and
// bidirectional controls, which could hide an at sign or reorder the
// text) are removed, and every character that is or looks like an at sign
// (fullwidth U+FF20, small U+FE6B, and any other whose compatibility form
// holds '@') is spelt " at ". Graph refuses or misreads a display name
// with an at sign (SMTP2Graph #28: ErrorSendAsDenied), and a lookalike
// would show the recipient an address that is not the sender's.
func CleanDisplayName(n string) string {
	n = strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return ' '
		case r >= 0x80 && unicode.Is(unicode.Cf, r):
			return -1
		case r >= 0x80 && r != '\uFF20' && r != '\uFE6B' && strings.ContainsRune(norm.NFKC.String(string(r)), '@'):
			return '@'
		}
		return r
	}, n)
	n = atLookalikes.Replace(n)
	return strings.Join(strings.Fields(n), " ")
}
