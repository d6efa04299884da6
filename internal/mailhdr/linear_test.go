package mailhdr

import (
	"strings"
	"testing"
	"time"
)

// TestLinearTime feeds 1 MiB adversarial values to every parser. Each
// pattern defeats a naive implementation (rescanning for "?=", for a closing
// quote or parenthesis, or for a '>' from every opener); all must finish
// quickly.
func TestLinearTime(t *testing.T) {
	const n = 1 << 20
	patterns := []string{
		"=?utf-8?q?", "=?a?b?", "=?utf-8?q?x ", "=?", "?=", "((", "(a", "\"", "\"a", "<", "<a@b ",
		"a@b ", "a,", ":", "a:", "@", "=?utf-8?b?QUJD?=", "x*0*=a;", "filename*", "; a=\"",
	}
	for _, p := range patterns {
		s := strings.Repeat(p, n/len(p))
		start := time.Now()
		DecodeText(s)
		ParseAddressList(s)
		ParseMediaType("text/plain; " + s)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("pattern %q: %v for 1 MiB", p, d)
		}
	}
}
