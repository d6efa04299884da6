//go:build !windows

package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestServiceIsWindowsOnly(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"service"}, {"service", "install", "--config", "/etc/graphrelay/graphrelay.yaml"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if !strings.Contains(errb.String(), "Windows-only") || !strings.Contains(errb.String(), "graphrelay.service") {
			t.Errorf("%q: stderr %q", args, errb.String())
		}
	}
}
