//go:build !windows

package config

// platformDefaults leaves default.yaml as it is: ./spool, relative to the
// working directory.
func platformDefaults(*Config) {}
