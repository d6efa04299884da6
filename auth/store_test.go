package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/graphrelay/graphrelay/config"
)

// Most tests use cost-4 hashes: Load accepts any bcrypt cost, and at
// HashPassword's cost 12 every Verify takes a quarter of a second (ten times
// that under -race). BenchmarkVerifyWrongPassword reports the real cost.
var (
	hashOnce                sync.Once
	scannerHash, copierHash string
	scannerPass, copierPass = "scan-Pa55 word", "c0pier!"
)

func hashes(t *testing.T) (string, string) {
	t.Helper()
	hashOnce.Do(func() {
		for _, h := range []struct {
			dst  *string
			pass string
		}{{&scannerHash, scannerPass}, {&copierHash, copierPass}} {
			b, err := bcrypt.GenerateFromPassword([]byte(h.pass), bcrypt.MinCost)
			if err != nil {
				panic(err)
			}
			*h.dst = string(b)
		}
	})
	return scannerHash, copierHash
}

// users builds a config users list from name, hash pairs.
func users(nameHash ...string) []config.User {
	var us []config.User
	for i := 0; i+1 < len(nameHash); i += 2 {
		us = append(us, config.User{Name: nameHash[i], PasswordHash: nameHash[i+1]})
	}
	return us
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lowHashCost makes HashPassword use bcrypt's minimum cost for one test,
// whose subject is the hash's form, not the work it costs.
func lowHashCost(t *testing.T) {
	t.Helper()
	prev := hashCost
	hashCost = bcrypt.MinCost
	t.Cleanup(func() { hashCost = prev })
}

func TestHashPasswordRoundTrip(t *testing.T) {
	// Production hashes at Cost, which is 12; the rest of the test hashes
	// at the minimum cost, since every property checked is the same at
	// any cost.
	if hashCost != Cost || Cost != 12 {
		t.Fatalf("HashPassword's cost is %d (Cost %d), want 12", hashCost, Cost)
	}
	lowHashCost(t)
	h, err := HashPassword(scannerPass)
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != hashCost {
		t.Fatalf("cost %d, %v; want %d", cost, err, hashCost)
	}
	if !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") || len(h) != 60 {
		t.Fatalf("not a bcrypt hash: %q", h)
	}
	if h2, _ := HashPassword(scannerPass); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	s, err := Load([]config.User{{Name: "scanner", PasswordHash: h}}, "")
	if err != nil {
		t.Fatalf("Load refuses HashPassword's output: %v", err)
	}
	if s.Verify("scanner", "wrong password") || s.Verify("fax", "wrong password") {
		t.Fatal("a wrong password verified")
	}
	if !s.Verify("scanner", scannerPass) {
		t.Fatal("the right password does not verify")
	}
}

// BenchmarkVerifyWrongPassword reports what a failed AUTH costs at the
// production cost, for a known and for an unknown user; the two should be
// close, so that timing does not reveal which user names exist. Timing is
// machine-dependent, so it is reported, not asserted.
func BenchmarkVerifyWrongPassword(b *testing.B) {
	h, err := bcrypt.GenerateFromPassword([]byte(scannerPass), Cost)
	if err != nil {
		b.Fatal(err)
	}
	s, err := Load([]config.User{{Name: "scanner", PasswordHash: string(h)}}, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, user := range []string{"scanner", "fax"} {
		b.Run(user, func(b *testing.B) {
			for b.Loop() {
				if s.Verify(user, "wrong password") {
					b.Fatal("a wrong password verified")
				}
			}
		})
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	lowHashCost(t)
	for _, pw := range []string{"", strings.Repeat("x", 73), "a\x00b", "trailing\n", "cr\rinside"} {
		if h, err := HashPassword(pw); err == nil {
			t.Errorf("HashPassword(%q) = %q, want an error", pw, h)
		} else if strings.Contains(err.Error(), pw) && pw != "" {
			t.Errorf("error repeats the password: %v", err)
		}
	}
	if _, err := HashPassword(strings.Repeat("x", MaxPasswordLen)); err != nil {
		t.Errorf("72 bytes must be accepted: %v", err)
	}
}

func TestLoad(t *testing.T) {
	sh, ch := hashes(t)
	file := writeFile(t, "# users mounted as a secret\n- name: copier\n  password_hash: "+ch+"\n- name: \"1234\"\n  password_hash: '"+ch+"'\n")
	s, err := Load([]config.User{{Name: "scanner", PasswordHash: sh}}, file)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 || !s.Has("scanner") || !s.Has("copier") || !s.Has("1234") || s.Has("fax") {
		t.Fatalf("Len %d, Has scanner %v copier %v 1234 %v fax %v",
			s.Len(), s.Has("scanner"), s.Has("copier"), s.Has("1234"), s.Has("fax"))
	}

	for _, empty := range []string{"", "# nobody yet\n", "~\n", "[]\n"} {
		path := ""
		if empty != "" {
			path = writeFile(t, empty)
		}
		s, err := Load(nil, path)
		if err != nil || s.Len() != 0 {
			t.Errorf("file %q: Len %v, err %v; want an empty store", empty, s, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	sh, ch := hashes(t)
	tests := []struct {
		name  string
		users []config.User
		file  string   // content; "" = no file
		want  []string // substrings of the error
	}{
		{"duplicate in config", users("scanner", sh, "scanner", ch),
			"", []string{`users[1]: user "scanner" is already defined at users[0]`}},
		{"duplicate across config and file, differing in case", users("scanner", sh),
			"- name: copier\n  password_hash: " + ch + "\n- name: SCANNER\n  password_hash: " + ch + "\n",
			[]string{`line 3: user "SCANNER" is already defined at users[0] as "scanner" (user names are case-insensitive)`}},
		{"plain-text password in config", users("scanner", "hunter2"),
			"", []string{`users[0]: user "scanner": password_hash is not a bcrypt hash`}},
		{"other crypt scheme", users("scanner", "$6$salt$abcdef"),
			"", []string{`users[0]: user "scanner": password_hash is not a bcrypt hash`}},
		{"truncated bcrypt hash", users("scanner", sh[:40]),
			"", []string{`users[0]: user "scanner": password_hash is a malformed bcrypt hash`}},
		{"missing name", users("", sh),
			"", []string{"users[0]: name is required"}},
		{"name with spaces around", users(" scanner", sh),
			"", []string{`users[0]: name " scanner" starts or ends with white space`}},
		{"unknown key with its line", nil,
			"- name: scanner\n  password_hash: " + sh + "\n- name: copier\n  password: hunter2\n",
			[]string{`line 4: unknown key "password" in a user (use name and password_hash)`}},
		{"missing hash in file", nil,
			"- name: scanner\n",
			[]string{`line 1: user "scanner": password_hash is not a bcrypt hash`}},
		{"bad hash in file names user and line", nil,
			"- name: scanner\n  password_hash: " + sh + "\n- name: fax\n  password_hash: hunter2\n",
			[]string{`line 3: user "fax": password_hash is not a bcrypt hash`}},
		{"not a list", nil, "name: scanner\npassword_hash: x\n",
			[]string{"line 1: the file must be a list"}},
		{"entry not a mapping", nil, "- scanner\n",
			[]string{"line 1: an entry must be a mapping"}},
		{"key given twice", nil, "- name: a\n  name: b\n  password_hash: " + sh + "\n",
			[]string{"line 2: name is given twice"}},
		{"YAML syntax", nil, "- name: [scanner\n", []string{"users_file "}},
		{"every problem at once", users("", sh, "fax", "hunter2"),
			"- name: x\n  pass: y\n",
			[]string{"users[0]: name is required", `users[1]: user "fax"`, `unknown key "pass"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			s, err := Load(tt.users, path)
			if err == nil {
				t.Fatalf("Load succeeded with %d users, want an error", s.Len())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			// Neither a hash nor a plain-text password may leak into errors.
			for _, secret := range []string{sh, ch, sh[:40], "hunter2", "$6$salt"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks %q: %v", secret, err)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(nil, path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "users_file") {
		t.Fatalf("err = %v, want a not-exist error naming users_file", err)
	}
}

func TestVerify(t *testing.T) {
	sh, ch := hashes(t)
	s, err := Load(users("scanner", sh, "Copier", ch), "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, pass string
		want       bool
	}{
		{"scanner", scannerPass, true},
		{"SCANNER", scannerPass, true}, // names are case-insensitive
		{"copier", copierPass, true},
		{"scanner", strings.ToUpper(scannerPass), false}, // passwords are not
		{"scanner", copierPass, false},                   // another user's password
		{"scanner", scannerPass + " ", false},
		{"scanner", "", false},
		{"fax", scannerPass, false}, // unknown user
		{"", scannerPass, false},
		{"scanner", scannerPass + strings.Repeat("x", 72), false}, // bcrypt would truncate
	}
	for _, tt := range tests {
		if got := s.Verify(tt.user, tt.pass); got != tt.want {
			t.Errorf("Verify(%q, %q) = %v, want %v", tt.user, tt.pass, got, tt.want)
		}
	}
	if n, ok := s.Canonical("COPIER"); !ok || n != "Copier" {
		t.Errorf("Canonical(COPIER) = %q, %v; want Copier, true", n, ok)
	}
	if _, ok := s.Canonical("fax"); ok {
		t.Error("Canonical(fax) found a user")
	}

}

// An unknown user is checked against a dummy hash of the cost most users
// have, so a store of hashes from another tool (htpasswd -B uses cost 5)
// does not make unknown names stand out by taking cost-12 time.
func TestDummyCostFollowsUsers(t *testing.T) {
	h5, err := bcrypt.GenerateFromPassword([]byte("x"), 5)
	if err != nil {
		t.Fatal(err)
	}
	h6, err := bcrypt.GenerateFromPassword([]byte("y"), 6)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(users("a", string(h5), "b", string(h5), "c", string(h6)), "")
	if err != nil {
		t.Fatal(err)
	}
	if s.dummyCost != 5 {
		t.Errorf("dummy cost %d, want 5", s.dummyCost)
	}
	if c, _ := bcrypt.Cost(dummyHash(s.dummyCost)); c != 5 {
		t.Errorf("dummy hash has cost %d, want 5", c)
	}
}
