package mailhdr

import (
	"bytes"
	"strings"
	"sync/atomic"
)

// Header values come from the sender, so every parser here must take time
// linear in its input, whatever the input holds. The searches that could
// break that, by scanning the rest of the value again from every opener
// ("=?", '"', '(', '<'), go through the helpers below, which count the bytes
// they examine while a test has switched counting on. linear_test.go
// compares that count across input sizes: unlike a stopwatch it does not
// depend on how busy the machine is. With counting off (always, outside
// that test) the cost is one atomic load per search.
var scanCount struct {
	on    atomic.Bool
	bytes atomic.Int64
}

// scanned records that a search examined n bytes.
func scanned(n int) {
	if scanCount.on.Load() {
		scanCount.bytes.Add(int64(n))
	}
}

// searched records a search of s for a needle of length k that returned
// i: it examined up to the end of the match, or all of s.
func searched(s string, i, k int) int {
	if i < 0 {
		scanned(len(s))
	} else {
		scanned(i + k)
	}
	return i
}

func index(s, sub string) int        { return searched(s, strings.Index(s, sub), len(sub)) }
func indexByte(s string, c byte) int { return searched(s, strings.IndexByte(s, c), 1) }
func indexAny(s, chars string) int   { return searched(s, strings.IndexAny(s, chars), 1) }
func contains(s, sub string) bool    { return index(s, sub) >= 0 }

func indexByteB(b []byte, c byte) int {
	i := bytes.IndexByte(b, c)
	if i < 0 {
		scanned(len(b))
	} else {
		scanned(i + 1)
	}
	return i
}
