//go:build windows

package config

import (
	"os"
	"path/filepath"
)

// platformDefaults puts the spool where Windows keeps service data,
// %ProgramData%\graphrelay\spool, which the MSI's layout shares: the
// Linux default ./spool would land in C:\Windows\System32 for a service.
func platformDefaults(cfg *Config) {
	cfg.Queue.Dir = filepath.Join(programData(), "graphrelay", "spool")
}

// programData is %ProgramData%, which every Windows since Vista sets.
func programData() string {
	if d := os.Getenv("ProgramData"); d != "" {
		return d
	}
	return `C:\ProgramData`
}
