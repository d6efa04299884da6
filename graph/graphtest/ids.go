package graphtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/mail"
	"strings"
)

// newGUID returns a random version-4 GUID in the lower-case form that Graph
// uses for request-id and Entra uses for trace and correlation ids.
func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return formatGUID(b)
}

// derivedGUID returns a GUID that is a stable function of its inputs, so
// that object ids the fake invents (mailboxes, service principals) are the
// same on every run and across Server instances.
func derivedGUID(kind, value string) string {
	sum := sha256.Sum256([]byte("graphtest/" + kind + "/" + value))
	var b [16]byte
	copy(b[:], sum[:16])
	return formatGUID(b)
}

func formatGUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// isGUID reports whether s has the 8-4-4-4-12 hexadecimal shape of an Entra
// object id.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// validAddress reports whether s is a bare RFC 5322 addr-spec, which is what
// Graph expects in emailAddress.address. A display-name form such as
// "Bob <bob@contoso.com>" is not a bare address.
func validAddress(s string) bool {
	if s == "" || strings.TrimSpace(s) != s {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" {
		return false
	}
	return strings.EqualFold(a.Address, s)
}

// randomToken returns n random bytes in unpadded base64url, used for opaque
// identifiers such as message ids and upload auth tokens.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// newMessageID returns an id in the shape of an Exchange item id: it starts
// with "AAMk" and ends with "=", so a client that fails to escape or that
// mangles ids is caught.
func newMessageID() string {
	return "AAMkAD" + randomToken(45) + "="
}
