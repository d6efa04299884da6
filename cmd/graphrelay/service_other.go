//go:build !windows

package main

import (
	"fmt"
	"io"
)

// serviceCmd exists on every platform so that "graphrelay service" gives a
// useful answer instead of "unknown command" on the systems where the
// service manager is systemd.
func serviceCmd(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, `graphrelay service: Windows services are Windows-only; on Linux install packaging/graphrelay.service (systemd) or run "graphrelay serve" (see docs/deploy.md)`)
	return 2
}

// defaultConfigFile is where the packages and docs/deploy.md put the
// configuration: the systemd unit's ConfigurationDirectory.
func defaultConfigFile() string { return "/etc/graphrelay/graphrelay.yaml" }
