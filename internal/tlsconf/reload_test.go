package tlsconf

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The listener is built once from ServerConfig, as smtpd does; Reload must
// change what that same listener serves.
func TestReloadSwapsServedCertificate(t *testing.T) {
	dir := t.TempDir()
	a := makeCert(t, certOpts{cn: "a.test"})
	b := makeCert(t, certOpts{cn: "b.test"})
	cfg := writePair(t, dir, a)
	m, logs := newManager(t, cfg)
	addr := serve(t, m.ServerConfig())
	if got := servedFingerprint(t, addr); got != Fingerprint(a.cert) {
		t.Fatalf("served %s before reload, want a", got)
	}

	writePair(t, dir, b)
	if err := m.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := servedFingerprint(t, addr); got != Fingerprint(b.cert) {
		t.Fatalf("served %s after reload, want b %s", got, Fingerprint(b.cert))
	}
	if !m.Certificate().Equal(b.cert) {
		t.Fatal("Certificate() not updated")
	}
	l := logs.String()
	if !strings.Contains(l, "tls certificate reloaded") || !strings.Contains(l, "CN=b.test") ||
		!strings.Contains(l, Fingerprint(b.cert)) || !strings.Contains(l, "not_after="+b.cert.NotAfter.UTC().Format(time.RFC3339)) {
		t.Errorf("reload not logged with subject, fingerprint and expiry:\n%s", l)
	}
	mustNotLogKeys(t, l)

	// Broken replacements leave b in service.
	c := makeCert(t, certOpts{cn: "c.test"})
	broken := map[string]func(){
		"garbage certificate": func() { writeAtomic(t, cfg.CertFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n")) },
		"truncated key":       func() { writeAtomic(t, cfg.KeyFile, keyPEM(t, b.key, "pkcs8")[:100]) },
		"mismatched key":      func() { writeAtomic(t, cfg.KeyFile, keyPEM(t, c.key, "pkcs8")) },
		"missing certificate": func() { os.Remove(cfg.CertFile) },
	}
	for name, breakIt := range broken {
		writePair(t, dir, b)
		breakIt()
		err := m.Reload()
		if err == nil {
			t.Fatalf("%s: Reload succeeded", name)
		}
		if !strings.Contains(err.Error(), "still serving") || !strings.Contains(err.Error(), Fingerprint(b.cert)) {
			t.Errorf("%s: error %q does not say what is still served", name, err)
		}
		if got := servedFingerprint(t, addr); got != Fingerprint(b.cert) {
			t.Fatalf("%s: served %s, want b still", name, got)
		}
		if !m.Certificate().Equal(b.cert) {
			t.Fatalf("%s: Certificate() changed", name)
		}
	}
}

// pollUntil polls cond until it holds or the deadline passes.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatchPicksUpRenewal(t *testing.T) {
	dir := t.TempDir()
	a := makeCert(t, certOpts{cn: "a.test"})
	b := makeCert(t, certOpts{cn: "b.test"})
	c := makeCert(t, certOpts{cn: "c.test"})
	cfg := writePair(t, dir, a)
	m, logs := newManager(t, cfg)
	addr := serve(t, m.ServerConfig())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.Watch(ctx, 20*time.Millisecond)
		close(done)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return after cancel")
		}
	}()

	// A renewal by rename, as certbot and acme.sh do.
	writePair(t, dir, b)
	pollUntil(t, "renewal by rename", func() bool { return servedFingerprint(t, addr) == Fingerprint(b.cert) })

	// A renewal written in place (cp over the old files).
	if err := os.WriteFile(cfg.KeyFile, keyPEM(t, c.key, "pkcs8"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.CertFile, c.certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "renewal in place", func() bool { return m.Certificate().Equal(c.cert) })
	if got := servedFingerprint(t, addr); got != Fingerprint(c.cert) {
		t.Fatalf("served %s after in-place renewal", got)
	}
	if n := strings.Count(logs.String(), "tls certificate reloaded"); n < 2 {
		t.Errorf("%d reloads logged, want at least 2", n)
	}
}

// A poll that sees the new key before the new certificate must keep the
// good certificate and retry, and only files that stay bad are warned
// about. Driven by poll directly so every step is deterministic.
func TestWatchMidWrite(t *testing.T) {
	dir := t.TempDir()
	a := makeCert(t, certOpts{cn: "a.test"})
	b := makeCert(t, certOpts{cn: "b.test"})
	cfg := writePair(t, dir, a)
	// Room for step 3 to write b's certificate at exactly this size.
	certSize := len(a.certPEM) + 256
	if err := os.WriteFile(cfg.CertFile, padTo(a.certPEM, certSize), 0o644); err != nil {
		t.Fatal(err)
	}
	m, logs := newManager(t, cfg)
	addr := serve(t, m.ServerConfig())
	var w watchState

	m.poll(&w)
	if strings.Contains(logs.String(), "reloaded") {
		t.Fatal("reloaded unchanged files")
	}

	// Step 1: the renewal has written the key only.
	writeAtomic(t, cfg.KeyFile, keyPEM(t, b.key, "pkcs8"))
	m.poll(&w)
	if !m.Certificate().Equal(a.cert) || servedFingerprint(t, addr) != Fingerprint(a.cert) {
		t.Fatal("half-written renewal replaced the good certificate")
	}
	if strings.Contains(logs.String(), "level=WARN msg=\"tls certificate files changed") {
		t.Fatalf("warned on the first mid-write poll:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "do not load yet") {
		t.Errorf("mid-write poll not logged at debug:\n%s", logs)
	}

	// Step 2: the same half state at the next poll: retried, still a, and
	// now one warning; further polls do not repeat it.
	for range 3 {
		m.poll(&w)
	}
	if !m.Certificate().Equal(a.cert) {
		t.Fatal("a still-broken pair replaced the good certificate")
	}
	if n := strings.Count(logs.String(), "changed and do not load"); n != 1 {
		t.Errorf("%d settled-failure warnings, want 1:\n%s", n, logs)
	}

	// Step 3: the certificate arrives, written in place with the old
	// size and mtime, so the files look exactly as at the failed polls
	// (as they can on a coarse-mtime filesystem). The poll must still
	// retry, since the files differ from those in service.
	fi, err := os.Stat(cfg.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	before := statPair(cfg.CertFile, cfg.KeyFile)
	if err := os.WriteFile(cfg.CertFile, padTo(b.certPEM, certSize), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(cfg.CertFile, time.Time{}, fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if !statPair(cfg.CertFile, cfg.KeyFile).equal(before) {
		t.Fatal("test setup: stamps differ")
	}
	m.poll(&w)
	if !m.Certificate().Equal(b.cert) || servedFingerprint(t, addr) != Fingerprint(b.cert) {
		t.Fatal("completed renewal not picked up")
	}
	if w.failures != 0 {
		t.Errorf("failure count not reset: %d", w.failures)
	}
}

// A SIGHUP Reload records what it read, so the next poll does not load the
// same files again.
func TestReloadThenPollIsQuiet(t *testing.T) {
	dir := t.TempDir()
	a := makeCert(t, certOpts{})
	b := makeCert(t, certOpts{})
	cfg := writePair(t, dir, a)
	m, logs := newManager(t, cfg)
	writePair(t, dir, b)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	var w watchState
	m.poll(&w)
	if n := strings.Count(logs.String(), "reloaded"); n != 1 {
		t.Fatalf("%d reloads logged, want 1 (the poll reloaded again)", n)
	}
}

func TestFileStampDetectsSameSizeSwap(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	writeAtomic(t, p, []byte("aaaa"))
	s1 := statFile(p)
	// Same size and, on coarse-clock filesystems, possibly the same mtime:
	// the rename still gives a different file.
	writeAtomic(t, p, []byte("bbbb"))
	if err := os.Chtimes(p, time.Time{}, time.Unix(0, s1.modTime)); err != nil {
		t.Fatal(err)
	}
	if statFile(p).equal(s1) {
		t.Fatal("replaced file with equal size and mtime seen as unchanged")
	}
	if !statFile(p).equal(statFile(p)) {
		t.Fatal("unchanged file seen as changed")
	}
	if statFile(filepath.Join(dir, "missing")).equal(s1) {
		t.Fatal("missing file equals an existing one")
	}
}

// padTo appends newlines, which PEM parsing ignores, up to n bytes.
func padTo(pemData []byte, n int) []byte {
	out := append([]byte(nil), pemData...)
	for len(out) < n {
		out = append(out, '\n')
	}
	return out
}
