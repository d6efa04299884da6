package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/graphrelay/graphrelay/graph"
)

// FuzzConvert feeds arbitrary bytes to Convert. Besides not panicking, every
// result must satisfy Graph's rules, hold valid UTF-8 text, and never hold
// more attachment bytes than the input could produce (decoding only
// shrinks; a duplicated subtree would show up here).
func FuzzConvert(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		env := Envelope{Recipients: []string{"a@example.com", "B@example.com", "b@example.com"}}
		res, err := Convert(bytes.NewReader(in), env, Options{MaxDepth: 8, MaxParts: 64})
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !ce.InvalidContent() || res != nil {
				t.Fatalf("error %v (%T) with result %v", err, err, res)
			}
			return
		}
		m := res.Message
		if _, err := json.Marshal(graph.SendMailRequest{Message: m}); err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if len(m.InternetMessageHeaders) > GraphMaxHeaders {
			t.Fatalf("%d headers", len(m.InternetMessageHeaders))
		}
		for _, h := range m.InternetMessageHeaders {
			if !strings.HasPrefix(strings.ToLower(h.Name), "x-") || !utf8.ValidString(h.Value) || len(h.Name)+2+len(h.Value) > maxHeaderLine {
				t.Fatalf("header %q", h)
			}
		}
		for _, s := range []string{m.Subject, m.Body.Content} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("invalid text %q", s)
			}
		}
		total := 0
		for _, a := range m.Attachments {
			if a.Name == "" || a.ODataType != graph.FileAttachmentType || !utf8.ValidString(a.Name) || a.ContentType == "" {
				t.Fatalf("attachment %q %q %q", a.Name, a.ODataType, a.ContentType)
			}
			total += len(a.ContentBytes)
		}
		if total > len(in)+200*len(m.Attachments) {
			t.Fatalf("%d attachment bytes from %d input bytes", total, len(in))
		}
		n := len(m.ToRecipients) + len(m.CcRecipients) + len(m.BccRecipients)
		if n != 2 {
			t.Fatalf("%d recipients, want 2", n)
		}
	})
}
