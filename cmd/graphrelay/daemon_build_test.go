package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// wineExecEnv names the program that runs a Windows executable under Wine
// (.ci/wine-exec). .ci/windows.sh sets it; the tests that run the real
// binary then build graphrelay.exe and run that under Wine, so the
// Windows spool, listeners and process death are the ones exercised,
// while the fake tenant and the SMTP clients stay native.
const wineExecEnv = "WINE_EXEC" // not GRAPHRELAY_*: the daemon would reject it

// daemonBinary is the graphrelay binary under test, built into dir.
type daemonBinary struct {
	path string
	wine string // the Wine wrapper, or "" for a native binary
}

// buildDaemon returns the binary for this platform (built once per test
// process), or builds one for Windows into dir when wineExecEnv is set.
func buildDaemon(t *testing.T, dir string) daemonBinary {
	t.Helper()
	b := daemonBinary{wine: os.Getenv(wineExecEnv)}
	if b.wine == "" {
		b.path = e2etest.Binary(t)
		return b
	}
	b.path = filepath.Join(dir, "graphrelay.exe")
	build := exec.Command("go", "build", "-o", b.path, ".")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return b
}

// command runs the binary with args.
func (b daemonBinary) command(args ...string) *exec.Cmd {
	if b.wine == "" {
		return exec.Command(b.path, args...)
	}
	return exec.Command(b.wine, append([]string{b.path}, args...)...)
}

// path turns a path of the test's filesystem into the daemon's: under
// Wine, Z: is the Unix root, and the daemon is given Windows paths
// (drive letter, backslashes) as an administrator would write them.
func (b daemonBinary) hostPath(p string) string {
	if b.wine == "" {
		return p
	}
	return `Z:` + strings.ReplaceAll(p, "/", `\`)
}

// windows reports whether the binary is a Windows one.
func (b daemonBinary) windows() bool { return b.wine != "" }
