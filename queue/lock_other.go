//go:build !unix

package queue

import (
	"errors"
	"os"
)

// lockSpool is not implemented without flock: graphrelay's spool is meant
// for Linux and the BSDs. Use direct mode elsewhere.
func lockSpool(root string) (*os.File, error) {
	return nil, errors.New("the queue spool needs flock, which this platform lacks; use delivery.mode: direct")
}

func notePID(f *os.File) {}

func unlockSpool(f *os.File) error { return nil }
