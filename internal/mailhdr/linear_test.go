package mailhdr

import (
	"runtime"
	"strings"
	"testing"
)

// adversarial are patterns whose repetition defeats a naive implementation
// (rescanning for "?=", for a closing quote or parenthesis, for a '>' or
// for a line's end from every opener).
var adversarial = []string{
	"=?utf-8?q?", "=?a?b?", "=?utf-8?q?x ", "=?", "?=", "((", "(a", "\"", "\"a", "<", "<a@b ",
	"a@b ", "a,", ":", "a:", "@", "=?utf-8?b?QUJD?=", "x*0*=a;", "filename*", "; a=\"",
	"From: a\n", "\nA: b\n", " x\n", "x\n",
}

func adversarialValue(p string, n int) string {
	return strings.Repeat(p, n/len(p))
}

// parseAll runs every parser on s.
func parseAll(s string) {
	DecodeText(s)
	ParseAddressList(s)
	ParseMediaType("text/plain; " + s)
	Canonical(s + "@" + s)
	ReadBlock([]byte(s), true, len(s))
}

// TestLinearTime feeds the adversarial values to every parser. Time is not
// measured: a busy machine would fail a budget, and a quadratic parser
// would only fail by the test binary's timeout, minutes later and without
// saying which pattern. Instead the work is counted, as the bytes the
// parsers' searches examine (scan.go) and the bytes and objects they
// allocate, at two sizes eight times apart: linear work grows about
// eightfold, quadratic work sixty-fourfold. BenchmarkAdversarial gives the
// time figures.
func TestLinearTime(t *testing.T) {
	const (
		small  = 16 << 10
		factor = 8
		// The allowed growth: well above linear (8) to leave room for
		// amortised buffer growth, far below quadratic (64).
		limit = 2 * factor
	)
	for _, p := range adversarial {
		w1 := measureWork(adversarialValue(p, small))
		w8 := measureWork(adversarialValue(p, factor*small))
		if w1.scanned < small/2 {
			t.Fatalf("pattern %q: the parsers examined %d bytes of %d; the scan count is broken", p, w1.scanned, small)
		}
		for _, g := range []struct {
			what   string
			n1, n8 int64
		}{
			{"bytes examined", w1.scanned, w8.scanned},
			{"bytes allocated", w1.allocBytes, w8.allocBytes},
			{"allocations", w1.allocs, w8.allocs},
		} {
			// +64 keeps a pattern that allocates next to nothing at the
			// small size from failing on a few extra objects.
			if g.n8 > limit*g.n1+64 {
				t.Errorf("pattern %q: %s grew from %d to %d for %d× the input; the work is not linear",
					p, g.what, g.n1, g.n8, factor)
			}
		}
	}
}

// work is what one run of the parsers cost.
type work struct{ scanned, allocBytes, allocs int64 }

func measureWork(s string) work {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	scanCount.bytes.Store(0)
	scanCount.on.Store(true)
	parseAll(s)
	scanCount.on.Store(false)
	runtime.ReadMemStats(&after)
	return work{
		scanned:    scanCount.bytes.Load(),
		allocBytes: int64(after.TotalAlloc - before.TotalAlloc),
		allocs:     int64(after.Mallocs - before.Mallocs),
	}
}

// BenchmarkAdversarial times every parser on 1 MiB of each adversarial
// pattern: go test -bench Adversarial ./internal/mailhdr.
func BenchmarkAdversarial(b *testing.B) {
	for _, p := range adversarial {
		s := adversarialValue(p, 1<<20)
		b.Run(strings.NewReplacer("\n", `\n`, " ", "_").Replace(p), func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				parseAll(s)
			}
		})
	}
}
