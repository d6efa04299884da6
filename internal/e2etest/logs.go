package e2etest

import (
	"bufio"
	"os"
	"regexp"
	"strings"
)

// Tail returns the last 60 lines of a daemon's log file, for a failure
// message.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

var idRE = regexp.MustCompile(`\bid=(\w+)`)

// IDsOnLines returns the queue ids on log lines containing marker.
func IDsOnLines(logs, marker string) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, marker) {
			if m := idRE.FindStringSubmatch(l); m != nil {
				out[m[1]] = true
			}
		}
	}
	return out
}
