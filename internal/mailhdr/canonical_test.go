package mailhdr

import (
	"errors"
	"fmt"
	"testing"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		in, want     string
		nonCanonical bool // refused with AddressError.NonCanonical
		refused      bool // refused as a syntax error
	}{
		{in: "scanner@contoso.com", want: "scanner@contoso.com"},
		{in: "Scanner@Contoso.COM", want: "Scanner@contoso.com"},
		{in: "user@bücher.example", want: "user@xn--bcher-kva.example"},
		{in: "user@BÜCHER.example", want: "user@xn--bcher-kva.example"},
		{in: "user@xn--bcher-kva.example", want: "user@xn--bcher-kva.example"},
		{in: "ü@bücher.example", want: "ü@xn--bcher-kva.example"},
		{in: "root@web1", want: "root@web1"},
		{in: "x@[192.0.2.1]", want: "x@[192.0.2.1]"},
		{in: "x@[ipv6:2001:db8::1]", want: "x@[IPv6:2001:db8::1]"},
		{in: `"john doe"@contoso.com`, want: `"john doe"@contoso.com`},
		{in: "a.b+tag@contoso.com", want: "a.b+tag@contoso.com"},
		{in: "nul\x00@contoso.com", refused: true},
		{in: "a@contoso.com\x00", refused: true},
		{in: "bell\x07@contoso.com", refused: true},
		{in: "del\x7f@contoso.com", refused: true},
		{in: "c1\u0085@contoso.com", refused: true},
		{in: "a@contoso.com.", refused: true},
		{in: "a.@contoso.com", refused: true},
		{in: ".a@contoso.com", refused: true},
		{in: "a..b@contoso.com", refused: true},
		{in: "a@", refused: true},
		{in: "@contoso.com", refused: true},
		{in: "root", refused: true},
		{in: "a@b@contoso.com", refused: true},
		{in: "a(b)@contoso.com", refused: true},
		{in: "a@con_toso.com", refused: true},
		{in: "a@-contoso.com", refused: true},
		{in: "a@contoso..com", refused: true},
		{in: "a@xn--zz.example", refused: true},
		{in: "a@[300.1.1.1]", refused: true},
		{in: "bad\xff@contoso.com", refused: true},
		{in: "a@ｃｏｎｔｏｓｏ.com", nonCanonical: true},
		{in: "a@con\u00adtoso.com", nonCanonical: true},
		{in: "a@exa\u200bmple.com", nonCanonical: true},
		{in: "a@㎏.com", nonCanonical: true},
		{in: "pay\u00adroll@contoso.com", nonCanonical: true},
		{in: "ｐａｙｒｏｌｌ@contoso.com", nonCanonical: true},
		{in: "a＠b@contoso.com", nonCanonical: true},
		{in: "e\u0301@contoso.com", nonCanonical: true},
	}
	// The second pass answers accepted domains from domainCache: it must
	// give the same results as the first.
	for pass := 0; pass < 2; pass++ {
		for _, tc := range tests {
			got, err := Canonical(tc.in)
			var ae *AddressError
			switch {
			case tc.refused || tc.nonCanonical:
				if !errors.As(err, &ae) {
					t.Errorf("Canonical(%q) = %q, %v; want refused", tc.in, got, err)
					continue
				}
				if ae.NonCanonical != tc.nonCanonical {
					t.Errorf("Canonical(%q): NonCanonical = %v (%s), want %v", tc.in, ae.NonCanonical, ae.Reason, tc.nonCanonical)
				}
			case err != nil || got != tc.want:
				t.Errorf("Canonical(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		}
	}
}

// The cache is bounded: filling it past domainCacheMax empties it, and
// what it answers afterwards is still right.
func TestDomainCacheBounded(t *testing.T) {
	for i := 0; i < domainCacheMax+10; i++ {
		d := fmt.Sprintf("Host%d.Example", i)
		got, err := Canonical("a@" + d)
		if want := fmt.Sprintf("a@host%d.example", i); err != nil || got != want {
			t.Fatalf("Canonical(a@%s) = %q, %v; want %q", d, got, err, want)
		}
		domainCache.mu.Lock()
		n := len(domainCache.m)
		domainCache.mu.Unlock()
		if n > domainCacheMax {
			t.Fatalf("%d domains cached, more than %d", n, domainCacheMax)
		}
	}
	if got, err := Canonical("user@BÜCHER.example"); err != nil || got != "user@xn--bcher-kva.example" {
		t.Fatalf("after the cache filled: %q, %v", got, err)
	}
}

func TestKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"User@Bücher.example", "user@xn--bcher-kva.example"},
		{"<Ops@Contoso.com>", "ops@contoso.com"},
	} {
		if Key(tc.a) != Key(tc.b) {
			t.Errorf("Key(%q) = %q, Key(%q) = %q; want equal", tc.a, Key(tc.a), tc.b, Key(tc.b))
		}
	}
	// A refused spelling never equals the address it imitates.
	if Key("a@ｃｏｎｔｏｓｏ.com") == Key("a@contoso.com") {
		t.Error("a fullwidth domain compares equal to the ASCII one")
	}
}

func TestQualify(t *testing.T) {
	for _, tc := range []struct{ addr, domain, want string }{
		{"root", "host.example", "root@host.example"},
		{"root@other.example", "host.example", "root@other.example"},
		{"root", "", "root"},
		{"", "host.example", ""},
	} {
		if got := Qualify(tc.addr, tc.domain); got != tc.want {
			t.Errorf("Qualify(%q, %q) = %q, want %q", tc.addr, tc.domain, got, tc.want)
		}
	}
}

func TestCleanDisplayName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"MFP 2nd floor", "MFP 2nd floor"},
		{"payroll@contoso.com", "payroll at contoso.com"},
		{"payroll＠contoso.com", "payroll at contoso.com"},
		{"payroll﹫contoso.com", "payroll at contoso.com"},
		{"pay\u200broll\u202e@x", "payroll at x"},
		{"line\r\nbreak\x00", "line break"},
		{"  Müller, Jörg  ", "Müller, Jörg"},
	} {
		if got := CleanDisplayName(tc.in); got != tc.want {
			t.Errorf("CleanDisplayName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func BenchmarkCanonical(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Canonical("Scanner.2nd-floor@Company.example")
		Canonical("hr@bücher.example")
	}
}
