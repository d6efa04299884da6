package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary YAML and environment values to the loader. It
// must never panic, and whatever it accepts must validate again cleanly
// (Load's defaults are idempotent).
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"testdata/production.yaml", "testdata/broken.yaml", "default.yaml"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, "GRAPHRELAY_SMTP_LISTENERS=lan=0.0.0.0:25")
		}
	}
	f.Add([]byte("mailboxes: [a@b.example, {address: c@d.example, id: x}]\nrules: [{mailbox: sender}]\n"), "GRAPHRELAY_MAILBOXES=a@b.example=")
	f.Add([]byte("smtp: {listeners: [{address: '[::1]:25', networks: ['::/0']}]}\n"), "GRAPHRELAY_SMTP_READ_TIMEOUT=2d")
	f.Add([]byte("&a [*a, *a]\n"), "")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml []byte, env string) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, yaml, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path, []string{env})
		if err != nil {
			return
		}
		if errs := Validate(cfg); len(errs) > 0 {
			t.Fatalf("an accepted configuration does not validate again: %v", errs)
		}
		_ = cfg.Redacted()
	})
}
