//go:build unix

package queue

import (
	"os"
	"syscall"
)

// giveToSpoolOwner hands a file that the check created in the spool to the
// spool directory's owner. "sudo graphrelay check" runs as root, and a
// root-owned lock file would keep the daemon, running as its own user, from
// opening its lock at the next start. Only root can change an owner; for
// anyone else the file is already theirs, as the spool is.
func giveToSpoolOwner(dir, path string) {
	if os.Geteuid() != 0 {
		return
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		_ = os.Lchown(path, int(st.Uid), int(st.Gid))
	}
}
