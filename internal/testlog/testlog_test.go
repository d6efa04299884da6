package testlog

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestTailAndFile(t *testing.T) {
	l := New(t, "daemon log")
	for i := range 3 * TailLines {
		l.Logger().Info("line", "n", i)
	}
	out := fmt.Sprintf("%s", l)
	if n := strings.Count(out, "msg=line"); n != TailLines {
		t.Errorf("%d log lines shown, want %d:\n%s", n, TailLines, out)
	}
	if !strings.Contains(out, fmt.Sprintf("n=%d\n", 3*TailLines-1)) || strings.Contains(out, "n=0\n") {
		t.Errorf("not the last lines:\n%s", out)
	}
	m := regexp.MustCompile(`whole log: (\S+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no file named:\n%s", out)
	}
	b, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(m[1])
	if string(b) != l.String() || strings.Count(string(b), "\n") != 3*TailLines {
		t.Errorf("the file holds %d lines, want all %d", strings.Count(string(b), "\n"), 3*TailLines)
	}
}

func TestShortLogShownWhole(t *testing.T) {
	l := New(t, "daemon log")
	l.Logger().Info("only line")
	if out := fmt.Sprint(l); !strings.Contains(out, "msg=\"only line\"") || strings.Contains(out, "whole log") {
		t.Errorf("short log: %q", out)
	}
}
