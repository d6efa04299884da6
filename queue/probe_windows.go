//go:build windows

package queue

import (
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// checkVolume refuses a spool on a volume without a transaction log
// (FAT32, exFAT): there a write-through rename is not known to survive a
// power loss together with the directory it changed, which is what the
// spool relies on instead of a directory fsync (fs_windows.go).
func checkVolume(dir string) error {
	fsName, err := volumeFilesystem(dir)
	if err != nil {
		return fmt.Errorf("cannot tell the filesystem of %s: %w", dir, err)
	}
	switch strings.ToUpper(fsName) {
	case "NTFS", "REFS":
		return nil
	}
	return fmt.Errorf("%s is on a %s volume; the spool needs NTFS or ReFS, whose log makes a rename durable (queue/FORMAT.md)", dir, fsName)
}

func volumeNote(dir string) string {
	if fsName, err := volumeFilesystem(dir); err == nil {
		return ", on " + fsName
	}
	return ""
}

// volumeFilesystem names the filesystem of the volume holding dir.
func volumeFilesystem(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	p, err := windows.UTF16PtrFromString(abs)
	if err != nil {
		return "", err
	}
	root := make([]uint16, windows.MAX_PATH+1)
	if err := windows.GetVolumePathName(p, &root[0], uint32(len(root))); err != nil {
		return "", err
	}
	name := make([]uint16, windows.MAX_PATH+1)
	if err := windows.GetVolumeInformation(&root[0], nil, 0, nil, nil, nil, &name[0], uint32(len(name))); err != nil {
		return "", err
	}
	return windows.UTF16ToString(name), nil
}
