package queue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Spool areas and files; FORMAT.md documents them.
const (
	areaTmp    = "tmp"    // messages being written or removed; emptied at startup
	areaQueue  = "queue"  // messages waiting for delivery
	areaFailed = "failed" // dead letters
	areaCtl    = "ctl"    // admin requests to the running daemon

	fileMessage   = "message.eml"
	fileRecord    = "record.json"
	fileRecordTmp = "record.json.tmp"
	fileLock      = "lock"
)

// Spool is the on-disk side of the queue: one directory per message, made
// complete in tmp/ and renamed into queue/, so that a message appears in
// one atomic step or not at all. Moving a message between queue/ and
// failed/ is one rename of its directory, and record updates replace
// record.json by rename. The Spool does no scheduling; only one process
// writes it at a time (see lock.go).
type Spool struct {
	root string
	fs   FS
	// Directory fsyncs of the shared areas are group-committed: one fsync
	// covers every rename that happened before it started.
	syncQueue, syncFailed *dirSyncer
}

// openSpool creates the layout under root if needed.
func openSpool(root string, fsys FS) (*Spool, error) {
	if fsys == nil {
		fsys = OSFS{}
	}
	for _, a := range []string{"", areaTmp, areaQueue, areaFailed, areaCtl} {
		if err := os.MkdirAll(filepath.Join(root, a), dirPerm); err != nil {
			return nil, fmt.Errorf("create spool directory: %w", err)
		}
	}
	return &Spool{
		root:       root,
		fs:         fsys,
		syncQueue:  newDirSyncer(fsys, filepath.Join(root, areaQueue)),
		syncFailed: newDirSyncer(fsys, filepath.Join(root, areaFailed)),
	}, nil
}

func (s *Spool) dir(area, id string) string { return filepath.Join(s.root, area, id) }

func (s *Spool) syncer(area string) *dirSyncer {
	if area == areaFailed {
		return s.syncFailed
	}
	return s.syncQueue
}

// create writes a new message into queue/ and returns its size. msg is
// copied as it arrives; account is called with each chunk's size before
// it is written and may refuse it (the byte quota). record builds the
// record once the size is known. Nothing is left on disk when create
// fails, and it returns only after the message and its record are
// durable. Errors reading msg (the SMTP stream) are returned unwrapped, so
// that the reply names them; disk errors are *SpoolError.
func (s *Spool) create(id string, msg io.Reader, account func(int64) error, record func(size int64) *Record) (int64, error) {
	tmp := s.dir(areaTmp, id)
	if err := s.fs.Mkdir(tmp); err != nil {
		return 0, &SpoolError{Op: "create message directory", Err: err}
	}
	done := false
	defer func() {
		if !done {
			_ = s.fs.RemoveAll(tmp)
		}
	}()
	size, err := s.writeMessage(filepath.Join(tmp, fileMessage), msg, account)
	if err != nil {
		return 0, err
	}
	b, err := encodeRecord(record(size))
	if err != nil {
		return 0, &SpoolError{Op: "write record", Err: err}
	}
	if err := s.writeFile(filepath.Join(tmp, fileRecord), b); err != nil {
		return 0, &SpoolError{Op: "write record", Err: err}
	}
	if err := s.fs.SyncDir(tmp); err != nil {
		return 0, &SpoolError{Op: "sync message directory", Err: err}
	}
	final := s.dir(areaQueue, id)
	if err := s.fs.Rename(tmp, final); err != nil {
		return 0, &SpoolError{Op: "move message into queue", Err: err}
	}
	done = true
	if err := s.syncQueue.sync(); err != nil {
		// The rename may or may not survive a power loss, and the client
		// will be told to retry, so the message must not be delivered.
		_ = s.fs.RemoveAll(final)
		return 0, &SpoolError{Op: "sync queue directory", Err: err}
	}
	return size, nil
}

// writeMessage copies msg into a new file and syncs it.
func (s *Spool) writeMessage(path string, msg io.Reader, account func(int64) error) (int64, error) {
	f, err := s.fs.Create(path)
	if err != nil {
		return 0, &SpoolError{Op: "create message file", Err: err}
	}
	size, err := copyAccounted(f, msg, account)
	if err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, &SpoolError{Op: "sync message file", Err: err}
	}
	if err := f.Close(); err != nil {
		return 0, &SpoolError{Op: "close message file", Err: err}
	}
	return size, nil
}

// copyBufSize is the chunk size for spooling; large enough that a 4 KB
// notification is one write, small enough to keep 64 sessions cheap.
const copyBufSize = 32 << 10

// copyAccounted copies like io.Copy but asks account before each write,
// and keeps stream errors apart from disk errors.
func copyAccounted(w io.Writer, r io.Reader, account func(int64) error) (int64, error) {
	buf := make([]byte, copyBufSize)
	var n int64
	for {
		k, rerr := r.Read(buf)
		if k > 0 {
			if account != nil {
				if err := account(int64(k)); err != nil {
					return n, err
				}
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return n, &SpoolError{Op: "write message file", Err: err}
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// writeFile creates path with b and syncs it.
func (s *Spool) writeFile(path string, b []byte) error {
	f, err := s.fs.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeRecord replaces area/<id>/record.json: write record.json.tmp, sync
// it, rename it over record.json, sync the message directory. A reader
// sees the old record or the new one, never a mix.
func (s *Spool) writeRecord(area string, r *Record) error {
	b, err := encodeRecord(r)
	if err != nil {
		return err
	}
	dir := s.dir(area, r.Envelope.ID)
	tmp := filepath.Join(dir, fileRecordTmp)
	_ = s.fs.RemoveAll(tmp) // left by an earlier failure
	if err := s.writeFile(tmp, b); err != nil {
		_ = s.fs.RemoveAll(tmp)
		return fmt.Errorf("write record of %s: %w", r.Envelope.ID, err)
	}
	if err := s.fs.Rename(tmp, filepath.Join(dir, fileRecord)); err != nil {
		_ = s.fs.RemoveAll(tmp)
		return fmt.Errorf("replace record of %s: %w", r.Envelope.ID, err)
	}
	if err := s.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("sync record of %s: %w", r.Envelope.ID, err)
	}
	return nil
}

// readRecord reads area/<id>/record.json.
func (s *Spool) readRecord(area, id string) (*Record, error) {
	b, err := os.ReadFile(filepath.Join(s.dir(area, id), fileRecord))
	if err != nil {
		return nil, err
	}
	r, err := decodeRecord(b)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", area, id, err)
	}
	if r.Envelope.ID != id {
		return nil, fmt.Errorf("%s/%s: record names queue id %s", area, id, r.Envelope.ID)
	}
	return r, nil
}

// messagePath is where a message's bytes are.
func (s *Spool) messagePath(area, id string) string {
	return filepath.Join(s.dir(area, id), fileMessage)
}

// move renames a message directory from one area to another and syncs
// both directories: the message is in exactly one of them at every moment.
func (s *Spool) move(id, from, to string) error {
	if err := s.fs.Rename(s.dir(from, id), s.dir(to, id)); err != nil {
		return fmt.Errorf("move %s from %s/ to %s/: %w", id, from, to, err)
	}
	if err := s.syncer(to).sync(); err != nil {
		return fmt.Errorf("move %s to %s/: %w", id, to, err)
	}
	if err := s.syncer(from).sync(); err != nil {
		return fmt.Errorf("move %s out of %s/: %w", id, from, err)
	}
	return nil
}

// remove deletes a message: its directory is first renamed into tmp/, so
// that it disappears from the area in one step and a crash during the
// deletion leaves only debris that the next start removes. The directory
// is not synced: if a power loss undoes the rename, the message is
// delivered again, which the at-least-once guarantee allows.
func (s *Spool) remove(area, id string) error {
	gone := s.dir(areaTmp, id+".removing")
	if err := s.fs.Rename(s.dir(area, id), gone); err != nil {
		return fmt.Errorf("remove %s from %s/: %w", id, area, err)
	}
	if err := s.fs.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return nil
}

// exists reports whether area holds a message directory for id.
func (s *Spool) exists(area, id string) bool {
	fi, err := os.Stat(s.dir(area, id))
	return err == nil && fi.IsDir()
}

// scan reads every record in area. Entries that are not messages, or whose
// record cannot be read, are returned as problems rather than stopping the
// scan: one damaged message must not keep the others from being delivered.
func (s *Spool) scan(area string) ([]*Record, []error) {
	entries, err := os.ReadDir(filepath.Join(s.root, area))
	if err != nil {
		return nil, []error{fmt.Errorf("read %s/: %w", area, err)}
	}
	var recs []*Record
	var problems []error
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || !ValidID(id) {
			problems = append(problems, fmt.Errorf("%s/%s: not a message directory; ignored", area, id))
			continue
		}
		r, err := s.readRecord(area, id)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// Removed since ReadDir: an admin or the daemon was faster.
				if !s.exists(area, id) {
					continue
				}
			}
			problems = append(problems, err)
			continue
		}
		recs = append(recs, r)
	}
	return recs, problems
}

// recover clears what an interrupted process left: everything in tmp/
// (messages whose 250 was never sent, and deletions), and record.json.tmp
// files of record updates that did not reach their rename. It runs only
// with the spool lock held, before anything is delivered.
func (s *Spool) recover() (removed int, err error) {
	tmp := filepath.Join(s.root, areaTmp)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return 0, fmt.Errorf("read tmp/: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			return removed, fmt.Errorf("remove leftover %s: %w", e.Name(), err)
		}
		removed++
	}
	for _, area := range []string{areaQueue, areaFailed} {
		matches, _ := filepath.Glob(filepath.Join(s.root, area, "*", fileRecordTmp))
		for _, m := range matches {
			if err := os.Remove(m); err != nil {
				return removed, fmt.Errorf("remove leftover %s: %w", m, err)
			}
			removed++
		}
	}
	ctl, _ := filepath.Glob(filepath.Join(s.root, areaCtl, "*.tmp"))
	for _, m := range ctl {
		_ = os.Remove(m)
	}
	return removed, nil
}

// isMessageDir reports whether name looks like a message directory name
// (used by admin listings to skip foreign files quietly).
func isMessageDir(name string) bool { return ValidID(name) && !strings.Contains(name, ".") }
