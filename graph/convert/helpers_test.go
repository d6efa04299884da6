package convert

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/graph"
)

// variants returns a testdata message as written (bare LF), converted to
// CRLF, and with mixed endings (CRLF in the header, LF in the body, as curl
// -T sends an LF file), so every rule is checked against each form.
func variants(t testing.TB, name string) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	crlf := bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
	mixed := append([]byte{}, b...)
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		mixed = append(bytes.ReplaceAll(b[:i+1], []byte("\n"), []byte("\r\n")), b[i+1:]...)
	}
	return map[string][]byte{"LF": b, "CRLF": crlf, "mixed": mixed}
}

// convertAll converts every line-ending variant of a testdata message.
func convertAll(t *testing.T, name string, env Envelope) map[string]*Result {
	t.Helper()
	out := make(map[string]*Result)
	for v, b := range variants(t, name) {
		res, err := Convert(bytes.NewReader(b), env, Options{})
		if err != nil {
			t.Fatalf("%s (%s): %v", name, v, err)
		}
		out[v] = res
	}
	return out
}

// convertString converts an inline message written with LF endings.
func convertString(t *testing.T, msg string, env Envelope) *Result {
	t.Helper()
	res, err := Convert(strings.NewReader(msg), env, Options{})
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	return res
}

// lf normalises line endings for comparing body text across variants.
func lf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func names(as []graph.Attachment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Name)
	}
	return out
}

func hasWarning(res *Result, sub string) bool {
	for _, w := range res.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

func find(as []graph.Attachment, name string) *graph.Attachment {
	for i := range as {
		if as[i].Name == name {
			return &as[i]
		}
	}
	return nil
}

var oneRcpt = Envelope{From: "a@example.com", Recipients: []string{"b@example.com"}}
