//go:build unix

package queue

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// "sudo graphrelay check" on a spool that another user owns leaves the
// lock file it creates to that user, so the daemon can still take its lock.
func TestCheckSpoolAsRootLeavesTheLockToTheSpoolOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own a spool as another user")
	}
	dir := t.TempDir()
	const uid, gid = 65534, 65534 // nobody
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckSpool(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, fileLock))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
		t.Errorf("lock file owned by %d:%d, want the spool owner %d:%d", st.Uid, st.Gid, uid, gid)
	}
}
