package auth

import (
	"errors"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Cost is the bcrypt cost of hashes made by HashPassword. 12 takes about a
// quarter of a second on a current server core: unnoticeable for a printer
// that authenticates once per job, and 4× the work of bcrypt's default 10
// (OWASP's floor) for anyone who steals the configuration. Higher would make
// each AUTH attempt, including an attacker's, cost the relay more CPU.
const Cost = 12

// hashCost is the cost HashPassword uses: Cost, except in tests that check
// what HashPassword produces rather than how much work it does, where a
// cost-12 hash would take seconds under the race detector.
var hashCost = Cost

// MaxPasswordLen is bcrypt's limit: it ignores everything past 72 bytes, so a
// longer password would match any password sharing its first 72 bytes.
const MaxPasswordLen = 72

// HashPassword makes a bcrypt hash of password for the users list.
//
// It refuses passwords that SMTP clients could not send unambiguously: NUL
// is PLAIN's field separator, and the LOGIN server strips one trailing NUL,
// CR or LF that some clients append, so such passwords could never be
// entered reliably.
func HashPassword(password string) (string, error) {
	switch {
	case password == "":
		return "", errors.New("the password is empty")
	case len(password) > MaxPasswordLen:
		return "", errors.New("the password is longer than 72 bytes, bcrypt's limit")
	case strings.ContainsAny(password, "\x00\r\n"):
		return "", errors.New("the password contains a NUL, CR or LF character")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), hashCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// checkHash accepts a bcrypt hash in the modular-crypt form ($2a$, $2b$ or
// $2y$, as made by graphrelay passwd, htpasswd -B or PHP) and returns its
// cost. The error never repeats the value: it may be a plain-text password
// pasted by mistake.
func checkHash(h string) (int, error) {
	if !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") && !strings.HasPrefix(h, "$2y$") {
		return 0, errors.New("password_hash is not a bcrypt hash ($2a$, $2b$ or $2y$); make one with graphrelay passwd, plain-text passwords are not accepted")
	}
	cost, err := bcrypt.Cost([]byte(h))
	if err != nil || len(h) != 60 {
		return 0, errors.New("password_hash is a malformed bcrypt hash; make a new one with graphrelay passwd")
	}
	return cost, nil
}

// dummyHashes holds one hash per cost, made from a random-looking constant,
// so that verifying an unknown user runs bcrypt at the same cost as a known
// one. They are made lazily (each takes as long as one Verify) and shared
// by every Store.
var dummyHashes struct {
	sync.Mutex
	byCost map[int][]byte
}

func dummyHash(cost int) []byte {
	dummyHashes.Lock()
	defer dummyHashes.Unlock()
	if h, ok := dummyHashes.byCost[cost]; ok {
		return h
	}
	h, err := bcrypt.GenerateFromPassword([]byte("graphrelay unknown-user dummy"), cost)
	if err != nil {
		// Only a cost outside 4..31 fails, and costs come from hashes that
		// bcrypt.Cost already parsed.
		panic("auth: cannot make the dummy hash: " + err.Error())
	}
	if dummyHashes.byCost == nil {
		dummyHashes.byCost = map[int][]byte{}
	}
	dummyHashes.byCost[cost] = h
	return h
}
