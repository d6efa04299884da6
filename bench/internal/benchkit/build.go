package benchkit

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// mainPackage is built by import path, so the commands work from any
// directory inside the module.
const mainPackage = "github.com/graphrelay/graphrelay/cmd/graphrelay"

// Build compiles graphrelay into dir and returns the binary's path.
func Build(dir string) (string, error) { return BuildPackage(dir, mainPackage, "graphrelay") }

// FloorPackage is the floor servers' command (bench/internal/floorserver).
const FloorPackage = "github.com/graphrelay/graphrelay/bench/internal/floorserver"

// BuildPackage compiles the main package pkg into dir/name and returns
// the binary's path.
func BuildPackage(dir, pkg, name string) (string, error) {
	bin := filepath.Join(dir, name)
	// The commit is stamped into the binary (Version reads it) even where
	// GOFLAGS turns stamping off; if git cannot say, build without it.
	if exec.Command("go", "build", "-buildvcs=auto", "-o", bin, pkg).Run() == nil {
		return bin, nil
	}
	cmd := exec.Command("go", "build", "-buildvcs=false", "-o", bin, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s (run inside the graphrelay module): %w", pkg, err)
	}
	return bin, nil
}

// Version names the build measured: what "graphrelay version" prints and,
// for a development build, the commit it was built from, so that results
// from different versions are not mixed up.
func Version(bin string) string {
	v := "unknown"
	if out, err := exec.Command(bin, "version").Output(); err == nil {
		v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "graphrelay"))
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " with uncommitted changes"
			}
		}
	}
	if rev != "" {
		v += fmt.Sprintf(" (commit %.12s%s)", rev, modified)
	}
	return v
}
