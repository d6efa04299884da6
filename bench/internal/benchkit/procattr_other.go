//go:build !linux

package benchkit

import "syscall"

// childAttr: only Linux can tie the child's life to ours; elsewhere the
// benchmark stops its daemons itself.
func childAttr() *syscall.SysProcAttr { return nil }
