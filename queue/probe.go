package queue

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// CheckSpool tries what the daemon needs from an existing spool directory
// beyond writing files (which "graphrelay check" tries itself): the
// spool's lock, with the platform's own primitive (flock, LockFileEx),
// and on Windows a volume whose filesystem makes renames durable (see
// FORMAT.md). It returns what it found, for the check's output. A lock
// held by a running daemon is fine: it is the daemon's.
func CheckSpool(dir string) (string, error) {
	if err := checkVolume(dir); err != nil {
		return "", err
	}
	lockPath := filepath.Join(dir, fileLock)
	_, statErr := os.Stat(lockPath)
	lock, err := lockSpool(dir)
	if err == nil && errors.Is(statErr, fs.ErrNotExist) {
		giveToSpoolOwner(dir, lockPath)
	}
	switch {
	case errors.Is(err, errLocked):
		return "a running graphrelay holds its lock", nil
	case err != nil:
		return "", err
	}
	unlockSpool(lock)
	return "its lock can be taken" + volumeNote(dir), nil
}
