package mailhdr

import (
	"bytes"
	"net/mail"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// addSeeds adds every line of a testdata file to the fuzz corpus.
func addSeeds(f *testing.F, name string) {
	b, err := os.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		f.Add(string(line))
	}
}

func FuzzDecodeText(f *testing.F) {
	addSeeds(f, "testdata/text-seeds.txt")
	f.Fuzz(func(t *testing.T, s string) {
		out := DecodeText(s)
		if !utf8.ValidString(out) {
			t.Fatalf("DecodeText(%q) = %q: not UTF-8", s, out)
		}
		// Decoding never grows text by more than a bounded factor (a
		// byte becomes at most one 3-byte rune); a bug that duplicated
		// or looped would break this.
		if len(out) > 3*len(s)+3 {
			t.Fatalf("DecodeText(%q) grew to %d bytes", s, len(out))
		}
		if strings.ContainsAny(out, "\r\n") && !strings.ContainsAny(s, "=") {
			t.Fatalf("DecodeText(%q) = %q: line break survived unfolding", s, out)
		}
	})
}

func FuzzParseAddressList(f *testing.F) {
	addSeeds(f, "testdata/address-seeds.txt")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAddressList(s)
		if err != nil && len(got) != 0 {
			t.Fatalf("error %v with %d addresses", err, len(got))
		}
		for _, a := range got {
			if a.Address == "" || !utf8.ValidString(a.Address) || !utf8.ValidString(a.Name) {
				t.Fatalf("ParseAddressList(%q): bad address %q", s, a)
			}
		}
		// Differential check: for plain input that net/mail accepts,
		// the tolerant parser must find the same addresses.
		if !plainASCII(s) {
			return
		}
		ref, rerr := mail.ParseAddressList(s)
		if rerr != nil {
			return
		}
		if err != nil {
			t.Fatalf("ParseAddressList(%q): %v, net/mail found %v", s, err, ref)
		}
		if len(ref) != len(got) {
			t.Fatalf("ParseAddressList(%q) = %q, net/mail %v", s, got, ref)
		}
		for i := range ref {
			if !strings.EqualFold(ref[i].Address, got[i].Address) {
				t.Fatalf("ParseAddressList(%q)[%d] = %q, net/mail %q", s, i, got[i].Address, ref[i].Address)
			}
		}
	})
}

// plainASCII limits the differential check to input where the two parsers
// are meant to agree: printable ASCII, no encoded words, no quoted local
// parts and no domain literals (net/mail rewrites those).
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return !strings.Contains(s, "=?") && !strings.Contains(s, `"@`) && !strings.Contains(s, "[") && !strings.Contains(s, `\`)
}

// FuzzCanonical checks that Canonical never panics, that what it accepts
// holds no control character and is its own canonical form, and that Key
// agrees with it.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"a@b.example", "Ops@Bücher.EXAMPLE", "a@ｃｏｍ.com", "a@b.com.", "\"a b\"@c.example",
		"a@[IPv6:::1]", "a\x00@b", "=?utf-8?q?x?=@b.example", "a@xn--bcher-kva.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The remembered domain equals the computed one, and a refused
		// domain stays refused, the first time and the second.
		if at := strings.LastIndexByte(s, '@'); at >= 0 {
			d := s[at+1:]
			want, werr := canonicalDomainUncached(d)
			for i := 0; i < 2; i++ {
				got, gerr := canonicalDomain(d)
				if got != want || (gerr == nil) != (werr == nil) {
					t.Fatalf("canonicalDomain(%q) = %q, %v; uncached %q, %v", d, got, gerr, want, werr)
				}
			}
		}
		c, err := Canonical(s)
		if err != nil {
			return
		}
		for _, r := range c {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("Canonical(%q) = %q holds a control character", s, c)
			}
		}
		if c2, err := Canonical(c); err != nil || c2 != c {
			t.Fatalf("Canonical(%q) = %q, but Canonical(%q) = %q, %v", s, c, c, c2, err)
		}
		if Key(s) != Key(c) {
			t.Fatalf("Key(%q) = %q differs from Key(%q) = %q", s, Key(s), c, Key(c))
		}
	})
}

// FuzzReadBlock checks that ReadBlock never panics and that its body
// offset stays inside the input.
func FuzzReadBlock(f *testing.F) {
	for _, s := range []string{"From: a@b\r\n\r\nbody", "From x\nFrom: a\n\n", "\xEF\xBB\xBF\n\nA: b\n", " x\nA: b\nno field\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := ReadBlock([]byte(s), true, 1<<20)
		if b.BodyOffset < 0 || b.BodyOffset > len(s) {
			t.Fatalf("BodyOffset %d outside [0, %d]", b.BodyOffset, len(s))
		}
	})
}
