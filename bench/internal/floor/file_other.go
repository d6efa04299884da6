//go:build !linux

package floor

import "os"

// createFile elsewhere is os's; the benchmark measures on Linux only.
func createFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

func rename(from, to string) error { return os.Rename(from, to) }
