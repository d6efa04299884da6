package queue

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// faultFS is the OS filesystem with injected faults, standing in for a
// full disk or a failing device. Fault keys name the base name of the
// path, except that every .msg file is "msg" and every spare "spare".
type faultFS struct {
	OSFS
	mu sync.Mutex
	// budget is how many more bytes fit before writes fail with ENOSPC;
	// negative means unlimited.
	budget int64
	// fail maps "op:name" (op is create, write, truncate, sync, rename or
	// syncdir; name is the base name of the path, or "*") to the error to
	// return.
	fail     map[string]error
	syncDirs int
}

func newFaultFS() *faultFS { return &faultFS{budget: -1, fail: map[string]error{}} }

func (f *faultFS) fault(op, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := filepath.Base(path)
	switch {
	case strings.HasSuffix(name, extMsg):
		name = "msg"
	case filepath.Base(filepath.Dir(path)) == areaSpare:
		name = "spare"
	}
	if err, ok := f.fail[op+":"+name]; ok {
		return err
	}
	return f.fail[op+":*"]
}

func (f *faultFS) set(key string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, key)
	} else {
		f.fail[key] = err
	}
}

func (f *faultFS) setBudget(n int64) {
	f.mu.Lock()
	f.budget = n
	f.mu.Unlock()
}

func (f *faultFS) Create(path string) (File, error) {
	if err := f.fault("create", path); err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	file, err := f.OSFS.Create(path)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: path}, nil
}

func (f *faultFS) Reuse(path string, truncate bool) (File, error) {
	if err := f.fault("create", path); err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	file, err := f.OSFS.Reuse(path, truncate)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: path}, nil
}

func (f *faultFS) Append(path string) (File, error) {
	if err := f.fault("create", path); err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	file, err := f.OSFS.Append(path)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: path}, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if err := f.fault("rename", newpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return f.OSFS.Rename(oldpath, newpath)
}

func (f *faultFS) SyncDir(path string) error {
	f.mu.Lock()
	f.syncDirs++
	f.mu.Unlock()
	if err := f.fault("syncdir", path); err != nil {
		return &os.PathError{Op: "sync", Path: path, Err: err}
	}
	return f.OSFS.SyncDir(path)
}

type faultFile struct {
	File
	fs   *faultFS
	path string
}

func (w *faultFile) Write(p []byte) (int, error) {
	if err := w.fs.fault("write", w.path); err != nil {
		return 0, &os.PathError{Op: "write", Path: w.path, Err: err}
	}
	w.fs.mu.Lock()
	n := len(p)
	full := false
	if w.fs.budget >= 0 {
		if int64(n) > w.fs.budget {
			n, full = int(w.fs.budget), true
		}
		w.fs.budget -= int64(n)
	}
	w.fs.mu.Unlock()
	k, err := w.File.Write(p[:n])
	if err == nil && full {
		err = &os.PathError{Op: "write", Path: w.path, Err: syscall.ENOSPC}
	}
	return k, err
}

func (w *faultFile) Truncate(size int64) error {
	if err := w.fs.fault("truncate", w.path); err != nil {
		return &os.PathError{Op: "truncate", Path: w.path, Err: err}
	}
	return w.File.Truncate(size)
}

func (w *faultFile) Sync() error {
	if err := w.fs.fault("sync", w.path); err != nil {
		return &os.PathError{Op: "sync", Path: w.path, Err: err}
	}
	return w.File.Sync()
}

// listTree returns every path under dir, relative, for leftovers checks.
func listTree(dir string) []string {
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// messageFiles lists the files the spool holds for messages: everything
// but its fixed layout, empty spare files and journal segments. (A
// spare file holds a delivered message's bytes for up to spareDirtyFor
// while the queue runs; the checks that use this wait for it.)
func messageFiles(dir string) []string {
	var out []string
	for _, p := range listTree(dir) {
		switch p {
		case areaTmp, areaQueue, areaFailed, areaCtl, areaSpare, areaJournal, fileLock:
			continue
		}
		if strings.HasPrefix(p, areaCtl+"/") || strings.HasPrefix(p, areaJournal+"/") {
			continue
		}
		if strings.HasPrefix(p, areaSpare+"/") {
			if fi, err := os.Stat(filepath.Join(dir, p)); err == nil && fi.Size() == 0 {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}
