package mailhdr

import (
	"strings"
	"testing"
)

// adversarial are 1 MiB values that each defeat a naive implementation
// (rescanning for "?=", for a closing quote or parenthesis, or for a '>'
// from every opener).
var adversarial = []string{
	"=?utf-8?q?", "=?a?b?", "=?utf-8?q?x ", "=?", "?=", "((", "(a", "\"", "\"a", "<", "<a@b ",
	"a@b ", "a,", ":", "a:", "@", "=?utf-8?b?QUJD?=", "x*0*=a;", "filename*", "; a=\"",
	"From: a\n", "\nA: b\n", " x\n", "x\n",
}

func adversarialValue(p string) string {
	const n = 1 << 20
	return strings.Repeat(p, n/len(p))
}

// TestLinearTime feeds the adversarial values to every parser. It asserts
// no duration, which would depend on the machine's load: a quadratic
// parser needs about 10^12 steps for 1 MiB, hours rather than the
// milliseconds a linear one needs, so it fails by the test binary's
// timeout. BenchmarkAdversarial gives the figures.
func TestLinearTime(t *testing.T) {
	for _, p := range adversarial {
		s := adversarialValue(p)
		DecodeText(s)
		ParseAddressList(s)
		ParseMediaType("text/plain; " + s)
		Canonical(s + "@" + s)
		ReadBlock([]byte(s), true, len(s))
	}
}

// BenchmarkAdversarial times every parser on each adversarial value:
// go test -bench Adversarial ./internal/mailhdr.
func BenchmarkAdversarial(b *testing.B) {
	for _, p := range adversarial {
		s := adversarialValue(p)
		b.Run(strings.NewReplacer("\n", `\n`, " ", "_").Replace(p), func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				DecodeText(s)
				ParseAddressList(s)
				ParseMediaType("text/plain; " + s)
				Canonical(s + "@" + s)
				ReadBlock([]byte(s), true, len(s))
			}
		})
	}
}
