//go:build windows

package queue

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/windows"
)

// On Windows a file's Sync is FlushFileBuffers (the os package calls it),
// and the spool's renames are MoveFileEx with MOVEFILE_WRITE_THROUGH. NTFS
// records every change to a directory (a file created, renamed or
// deleted) in its transaction log, in order, and both calls return only
// once that log is on disk up to their own change. So once either has
// returned, every directory change made before it on the volume survives
// a power loss too: what Linux needs a directory fsync for is already
// done. FORMAT.md states this for admins.

// renameFile replaces newpath by oldpath with MoveFileEx(
// MOVEFILE_REPLACE_EXISTING|MOVEFILE_WRITE_THROUGH): atomic on one volume,
// and durable when it returns. os.Rename uses MoveFileEx too, but without
// MOVEFILE_WRITE_THROUGH.
func renameFile(oldpath, newpath string) error {
	from, err := windows.UTF16PtrFromString(oldpath)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	to, err := windows.UTF16PtrFromString(newpath)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	if err := windows.MoveFileEx(from, to, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// holdFiles: no handle is kept open for reuse, since a file deleted while
// one is open keeps its name until it is closed (held.go).
const holdFiles = false

// holdDirOpen: a directory cannot be opened like a file on Windows
// without FILE_FLAG_BACKUP_SEMANTICS, and syncDir needs no handle anyway.
const holdDirOpen = false

// syncDir has nothing to do on Windows: the write-through rename or the
// FlushFileBuffers that preceded it has committed NTFS's log, which holds
// the directory's changes. It still checks that the directory exists, so a
// spool removed from under the daemon is reported where Linux reports it.
func syncDir(path string) error {
	_, err := os.Stat(path)
	return err
}

// openFile is os.OpenFile, except that the file is opened with
// FILE_SHARE_DELETE as well as FILE_SHARE_READ|FILE_SHARE_WRITE, which is
// all os.OpenFile allows. Without it, a message file that an admin's
// "graphrelay queue show" or a delivery attempt has open could not be
// renamed or removed, and a journal segment left open could not be
// deleted: every spool file here behaves as it does on POSIX, where a
// name can change while the file is open.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	name, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var access uint32
	switch flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) {
	case os.O_RDONLY:
		access = windows.GENERIC_READ
	case os.O_WRONLY:
		access = windows.GENERIC_WRITE
	case os.O_RDWR:
		access = windows.GENERIC_READ | windows.GENERIC_WRITE
	}
	if flag&os.O_APPEND != 0 {
		// Every write goes to the end of the file, as O_APPEND does.
		access &^= windows.GENERIC_WRITE
		access |= windows.FILE_APPEND_DATA | windows.FILE_WRITE_ATTRIBUTES | windows.SYNCHRONIZE
	}
	var create uint32
	switch {
	case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		create = windows.CREATE_NEW
	case flag&(os.O_CREATE|os.O_TRUNC) == os.O_CREATE|os.O_TRUNC:
		create = windows.CREATE_ALWAYS
	case flag&os.O_CREATE != 0:
		create = windows.OPEN_ALWAYS
	case flag&os.O_TRUNC != 0:
		create = windows.TRUNCATE_EXISTING
	default:
		create = windows.OPEN_EXISTING
	}
	attrs := uint32(windows.FILE_ATTRIBUTE_NORMAL)
	if perm&0o200 == 0 && flag&os.O_CREATE != 0 {
		attrs = windows.FILE_ATTRIBUTE_READONLY
	}
	share := uint32(windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE)
	h, err := windows.CreateFile(name, access, share, nil, create, attrs, 0)
	if err != nil {
		if err == windows.ERROR_FILE_EXISTS {
			err = syscall.ERROR_FILE_EXISTS // os.IsExist knows the syscall one
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// openWrite opens a file that a single goroutine writes, syncs and
// closes; on Windows an *os.File, as every other spool file.
func openWrite(path string, flag int, perm os.FileMode) (File, error) {
	f, err := openFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// isBusy reports an error that only means another process has the file
// open at this moment without sharing it: the few microseconds in which
// MoveFileEx holds a file it renames, or a scanner holds it. Trying again
// shortly succeeds.
func isBusy(err error) bool {
	return errors.Is(err, windows.ERROR_SHARING_VIOLATION) || errors.Is(err, windows.ERROR_LOCK_VIOLATION)
}
