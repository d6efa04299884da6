//go:build windows

package config

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// platformDefaults puts the spool where Windows keeps service data,
// %ProgramData%\graphrelay\spool, beside the MSI's configuration: the
// Linux default ./spool would land in C:\Windows\System32 for a service.
func platformDefaults(cfg *Config) {
	cfg.Queue.Dir = filepath.Join(ProgramData(), "graphrelay", "spool")
}

// ProgramData is the ProgramData known folder (C:\ProgramData), the one the
// MSI's CommonAppDataFolder names. The known folder, not the environment
// variable, decides: Wine gives services a different %ProgramData%.
func ProgramData() string {
	if d, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0); err == nil && d != "" {
		return d
	}
	if d := os.Getenv("ProgramData"); d != "" {
		return d
	}
	return `C:\ProgramData`
}
