//go:build !unix && !windows

package queue

import (
	"errors"
	"os"
)

// lockSpool is not implemented where neither flock nor LockFileEx exists
// (Plan 9, WebAssembly): graphrelay's spool runs on Linux, the BSDs, macOS
// and Windows. Use direct mode elsewhere.
func lockSpool(root string) (*os.File, error) {
	return nil, errors.New("the queue spool needs flock, or LockFileEx, which this platform lacks; use delivery.mode: direct")
}

func notePID(f *os.File) {}

func unlockSpool(f *os.File) error { return nil }
