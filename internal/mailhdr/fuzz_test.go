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
