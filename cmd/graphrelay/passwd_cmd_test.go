package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/graphrelay/graphrelay/auth"
	"github.com/graphrelay/graphrelay/config"
)

func runPasswd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = passwdCmd(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// The printed entry must load as a users_file and verify the password, and
// the printed hash as a config user: that is the whole point of the command.
func TestPasswdPipedVerifies(t *testing.T) {
	// The command's cost is auth.HashPassword's, which the auth tests
	// check; here any bcrypt cost shows that the output loads and verifies.
	hashPassword = func(pw string) (string, error) {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		return string(h), err
	}
	t.Cleanup(func() { hashPassword = auth.HashPassword })
	tests := []struct {
		name, stdin, password string
		args                  []string
	}{
		{"entry with LF", "s3cret pass\n", "s3cret pass", []string{"--user", "scanner"}},
		{"entry with CRLF and more lines", "s3cret pass\r\nignored\n", "s3cret pass", []string{"-user", "MFP 2nd floor"}},
		{"hash only, no trailing newline", "s3cret pass", "s3cret pass", nil},
		{"name YAML would misread", "pw\n", "pw", []string{"--user", "1234"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runPasswd(t, tt.stdin, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			// The hash is random text, which may contain a short password
			// by chance ("pw"); the password must not appear elsewhere.
			if strings.Contains(bcryptHashRE.ReplaceAllString(out, ""), tt.password) || strings.Contains(errOut, tt.password) {
				t.Fatal("the password was printed")
			}
			var (
				store *auth.Store
				err   error
				user  string
			)
			if len(tt.args) == 0 {
				user = "anyone"
				hash := strings.TrimSuffix(out, "\n")
				if strings.Contains(hash, "\n") {
					t.Fatalf("want only the hash, got %q", out)
				}
				store, err = auth.Load([]config.User{{Name: user, PasswordHash: hash}}, "")
			} else {
				user = tt.args[1]
				if !strings.HasPrefix(out, "- name: ") || !strings.Contains(out, "\n  password_hash: $2") {
					t.Fatalf("not a users entry:\n%s", out)
				}
				path := filepath.Join(t.TempDir(), "users.yaml")
				if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
					t.Fatal(err)
				}
				store, err = auth.Load(nil, path)
			}
			if err != nil {
				t.Fatalf("output does not load: %v\n%s", err, out)
			}
			if !store.Verify(user, tt.password) {
				t.Fatalf("hash does not verify the password\n%s", out)
			}
		})
	}
}

var bcryptHashRE = regexp.MustCompile(`\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}`)

func TestPasswdErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, stdin string
		args        []string
		code        int
		stderr      string
	}{
		{"empty stdin", "", nil, 1, "first line is empty"},
		{"empty first line", "\nsecond\n", []string{"--user", "scanner"}, 1, "first line is empty"},
		{"CRLF only", "\r\n", nil, 1, "first line is empty"},
		{"over bcrypt's limit", strings.Repeat("p", 73) + "\n", nil, 1, "72 bytes"},
		{"huge line", strings.Repeat("p", 5000), nil, 1, "too long"},
		{"NUL in the password", "a\x00b\n", nil, 1, "NUL"},
		{"positional argument", "pw\n", []string{"hunter2"}, 2, "unexpected arguments"},
		{"unknown flag", "pw\n", []string{"--name", "x"}, 2, "flag provided but not defined"},
		{"empty user name", "pw\n", []string{"--user", ""}, 2, "name is required"},
		{"user name with spaces around", "pw\n", []string{"--user", "scanner "}, 2, "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runPasswd(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tt.code, tt.stderr)
			}
			if out != "" {
				t.Errorf("stdout %q on failure", out)
			}
			if strings.Contains(errOut, "hunter2") {
				t.Error("stderr repeats the argument that may be a password")
			}
		})
	}
}

func TestPasswdHelp(t *testing.T) {
	t.Parallel()
	code, _, errOut := runPasswd(t, "", "-h")
	if code != 0 || !strings.Contains(errOut, "graphrelay passwd [--user NAME]") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var out bytes.Buffer
	if run([]string{"help"}, &out, &out) != 0 || !strings.Contains(out.String(), "passwd") {
		t.Errorf("main usage does not list passwd:\n%s", out.String())
	}
}
