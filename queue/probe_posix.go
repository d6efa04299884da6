//go:build !windows

package queue

// checkVolume has nothing to check on POSIX systems: the spool makes its
// own renames durable with a directory fsync on any local filesystem.
func checkVolume(string) error { return nil }

func volumeNote(string) string { return "" }
