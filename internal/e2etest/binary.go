package e2etest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Module is the graphrelay command's import path, which Binary builds.
const Module = "github.com/graphrelay/graphrelay/cmd/graphrelay"

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// Binary returns the graphrelay binary for this platform, built once per
// test process (linking it costs a second or two of CPU each time) into
// a directory that Main removes at the end.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "graphrelay-e2e-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "graphrelay")
		if out, err := exec.Command("go", "build", "-o", binPath, Module).CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build %s: %v\n%s", Module, err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// Main runs the tests of a package that uses Binary and removes the
// binary afterwards; call it from TestMain: os.Exit(e2etest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}
