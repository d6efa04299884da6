// Package auth checks SMTP AUTH credentials against bcrypt hashes and
// throttles brute force. It never logs, and its errors never contain, a
// password or a hash.
package auth

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/graphrelay/graphrelay/config"
)

// maxNameLen matches the LOGIN mechanism's field limit: a longer name could
// never be sent.
const maxNameLen = 512

// Store holds the SMTP users. It is immutable after Load, which makes it
// safe for concurrent use without locks.
//
// User names are case-insensitive: device panels and their operators are
// inconsistent about case (some keypads only type capitals), Exchange and
// Entra treat user names the same way, and the password carries the
// secret, not the name's case. Two users differing only in case are
// therefore a configuration error. Passwords are, of course, compared
// exactly.
type Store struct {
	users map[string]user // by foldName
	// dummyCost is the cost used to verify unknown users: the most common
	// cost among the users, so that for all of them (and for every user
	// when hashes come from graphrelay passwd) an unknown name takes as
	// long as a known one.
	dummyCost int
}

type user struct {
	name string // as configured
	hash []byte
}

func foldName(s string) string { return strings.ToLower(s) }

// Load merges users (from the main configuration) with usersFile, a YAML
// list of {name, password_hash} entries ("" means none). It reports every
// problem at once; each names the user and where it is (users[i], or the
// file and line).
func Load(users []config.User, usersFile string) (*Store, error) {
	entries := make([]entry, 0, len(users))
	for i, u := range users {
		entries = append(entries, entry{name: u.Name, hash: u.PasswordHash, where: fmt.Sprintf("users[%d]", i)})
	}
	var errs []error
	if usersFile != "" {
		fromFile, err := readUsersFile(usersFile)
		if err != nil {
			errs = append(errs, err)
		}
		entries = append(entries, fromFile...)
	}

	s := &Store{users: make(map[string]user, len(entries))}
	where := make(map[string]string, len(entries))
	costs := map[int]int{}
	for _, e := range entries {
		if err := CheckName(e.name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.where, err))
			continue
		}
		cost, err := checkHash(e.hash)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: user %q: %w", e.where, e.name, err))
			continue
		}
		key := foldName(e.name)
		if prev, dup := s.users[key]; dup {
			errs = append(errs, fmt.Errorf("%s: user %q is already defined at %s as %q (user names are case-insensitive)", e.where, e.name, where[key], prev.name))
			continue
		}
		s.users[key] = user{name: e.name, hash: []byte(e.hash)}
		where[key] = e.where
		costs[cost]++
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	s.dummyCost = Cost
	best := 0
	for c, n := range costs {
		if n > best || (n == best && c > s.dummyCost) {
			s.dummyCost, best = c, n
		}
	}
	if len(s.users) > 0 {
		// Make the dummy hash now, so that the first AUTH with an unknown
		// name is not slower than later ones.
		dummyHash(s.dummyCost)
	}
	return s, nil
}

// CheckName reports whether name is acceptable as a user name: not empty,
// at most 512 bytes of UTF-8, without surrounding white space (which a
// device's settings page would likely strip) or control characters (which
// no client can send).
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("name is required")
	case len(name) > maxNameLen:
		return fmt.Errorf("name is longer than %d bytes", maxNameLen)
	case !utf8.ValidString(name):
		return errors.New("name is not valid UTF-8")
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("name %q starts or ends with white space", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errors.New("name contains a control character")
	}
	return nil
}

// Len returns the number of users.
func (s *Store) Len() int { return len(s.users) }

// Has reports whether a user of that name exists (case-insensitively).
func (s *Store) Has(name string) bool {
	_, ok := s.users[foldName(name)]
	return ok
}

// Canonical returns the user name as configured for name, which may differ
// from it in case. Record this spelling, not the client's, as the
// authenticated user, so that later comparisons (policy rules) need not
// know that names are case-insensitive.
func (s *Store) Canonical(name string) (string, bool) {
	u, ok := s.users[foldName(name)]
	return u.name, ok
}

// Verify reports whether password is right for user. An unknown user costs
// a bcrypt comparison against a dummy hash of the same cost, so the time
// taken does not reveal which names exist. An empty password, or one over
// bcrypt's 72 bytes (which bcrypt would silently truncate), is refused
// before the user is even looked up, which reveals nothing either.
func (s *Store) Verify(user, password string) bool {
	if password == "" || len(password) > MaxPasswordLen {
		return false
	}
	u, ok := s.users[foldName(user)]
	if !ok {
		bcrypt.CompareHashAndPassword(dummyHash(s.dummyCost), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(u.hash, []byte(password)) == nil
}
