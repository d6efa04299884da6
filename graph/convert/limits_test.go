package convert

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// nested builds a message with depth levels of multipart/mixed, each with a
// small attachment, and a text part at the bottom.
func nested(depth int) string {
	var b strings.Builder
	b.WriteString("Subject: bomb\nContent-Type: multipart/mixed; boundary=b0\n\n")
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "--b%d\nContent-Type: application/octet-stream; name=f%d.bin\n\nlevel %d\n", i, i, i)
		fmt.Fprintf(&b, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i, i+1)
	}
	fmt.Fprintf(&b, "--b%d\nContent-Type: text/plain\n\ndeepest\n--b%d--\n", depth, depth)
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\n", i)
	}
	return b.String()
}

// Rule 6: the depth limit keeps the deeper subtree as one .eml attachment
// with a warning; nothing above the limit is lost.
func TestDepthLimit(t *testing.T) {
	msg := nested(30)
	res, err := Convert(strings.NewReader(msg), oneRcpt, Options{MaxDepth: 5})
	if err != nil {
		t.Fatal(err)
	}
	as := res.Message.Attachments
	if len(as) != 6 || as[5].Name != "nested-parts-6.eml" || as[5].ContentType != "message/rfc822" {
		t.Fatalf("attachments %q", names(as))
	}
	for i := 0; i < 5; i++ {
		if as[i].Name != fmt.Sprintf("f%d.bin", i) {
			t.Errorf("attachment %d = %q", i, as[i].Name)
		}
	}
	if !bytes.Contains(as[5].ContentBytes, []byte("deepest")) || !bytes.HasPrefix(as[5].ContentBytes, []byte("Content-Type: multipart/mixed; boundary=b5")) {
		t.Errorf("kept subtree is not the raw entity")
	}
	if !hasWarning(res, "nesting deeper than 5") {
		t.Errorf("warnings %q", res.Warnings)
	}
	// The kept subtree converts on its own: nothing was lost.
	inner, err := Convert(bytes.NewReader(as[5].ContentBytes), oneRcpt, Options{MaxDepth: 100})
	if err != nil || len(inner.Message.Attachments) != 25 || !strings.Contains(inner.Message.Body.Content, "deepest") {
		t.Errorf("inner: %v, %d attachments", err, len(inner.Message.Attachments))
	}
}

// Rule 7: past the parts limit the rest of the multipart is kept as one .eml
// attachment with a warning; every part below the limit is an attachment.
func TestPartsLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: many\nContent-Type: multipart/mixed; boundary=p\n\n--p\n\nbody\n")
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&b, "--p\nContent-Type: application/octet-stream; name=a%d.bin\n\n%d\n", i, i)
	}
	b.WriteString("--p--\n")
	res, err := Convert(strings.NewReader(b.String()), oneRcpt, Options{MaxParts: 100})
	if err != nil {
		t.Fatal(err)
	}
	as := res.Message.Attachments
	// 100 entities: the root, the body, a0..a97; then the remainder.
	if len(as) != 99 || as[97].Name != "a97.bin" || as[98].Name != "remaining-parts-99.eml" {
		t.Fatalf("%d attachments, last %q", len(as), as[len(as)-1].Name)
	}
	if !hasWarning(res, "more than 100 MIME parts") {
		t.Errorf("warnings %q", res.Warnings)
	}
	rest, err := Convert(bytes.NewReader(as[98].ContentBytes), oneRcpt, Options{MaxParts: 5000})
	if err != nil || len(rest.Message.Attachments) != 3000-98 || rest.Message.Attachments[0].Name != "a98.bin" {
		t.Errorf("remainder: %v, %d attachments", err, len(rest.Message.Attachments))
	}
}

// Rule 9: never hang, bounded work: recursion bombs and part floods finish
// with the default limits, and the work they cost grows linearly with their
// size. Work is counted as bytes and objects allocated at two sizes four
// times apart, not timed: a busy machine would fail a time budget.
func TestBombsFinish(t *testing.T) {
	flood := func(n int) string {
		return "Content-Type: multipart/mixed; boundary=p\n\n" + strings.Repeat("--p\n\n", n)
	}
	bombs := []struct {
		name string
		make func(n int) string
		n    int // the larger size
	}{
		{"deep nesting", nested, 5000},
		{"part flood", flood, 200000},
		{"same boundary", func(n int) string {
			return strings.Repeat("Content-Type: multipart/alternative; boundary=a\n\n--a\n", n)
		}, 5000},
		{"boundary spam", func(n int) string {
			return "Content-Type: multipart/mixed; boundary=x\n\n" + strings.Repeat("--x--\n", n)
		}, 100000},
		{"header fields", func(n int) string { return strings.Repeat("X-A: b\n", n) + "\nbody\n" }, 100000},
		{"encoded words", func(n int) string {
			return "Subject: " + strings.Repeat("=?utf-8?q?a?=", n) + "\n\nx\n"
		}, 50000},
		{"guess candidates", func(n int) string {
			return "Content-Type: multipart/mixed\n\n" + strings.Repeat("--c1\n--c2\n", n)
		}, 50000},
	}
	const factor = 4
	for _, b := range bombs {
		small, large := convertWork(t, b.name, b.make(b.n/factor)), convertWork(t, b.name, b.make(b.n))
		// Linear work grows about fourfold, quadratic sixteenfold; the
		// limit leaves room for amortised buffer growth.
		for _, g := range []struct {
			what   string
			n1, n4 uint64
		}{{"bytes allocated", small.bytes, large.bytes}, {"allocations", small.allocs, large.allocs}} {
			if g.n4 > 2*factor*g.n1+1024 {
				t.Errorf("%s: %s grew from %d to %d for %d× the input; the work is not linear", b.name, g.what, g.n1, g.n4, factor)
			}
		}
	}
}

// allocWork is what one Convert allocated.
type allocWork struct{ bytes, allocs uint64 }

func convertWork(t *testing.T, name, msg string) allocWork {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Convert(strings.NewReader(msg), oneRcpt, Options{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Errorf("%s: %v", name, err)
	}
	return allocWork{after.TotalAlloc - before.TotalAlloc, after.Mallocs - before.Mallocs}
}
