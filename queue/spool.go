package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/graphrelay/graphrelay/internal/groupsync"
)

// Spool areas and files; FORMAT.md documents them.
const (
	areaTmp     = "tmp"     // new messages without a spare file; emptied at startup
	areaQueue   = "queue"   // messages waiting for delivery
	areaFailed  = "failed"  // dead letters
	areaSpare   = "spare"   // empty files kept for reuse
	areaJournal = "journal" // attempt journal segments
	areaCtl     = "ctl"     // admin requests to the running daemon

	extMsg   = ".msg"  // envelope line + raw message
	extState = ".json" // the message's record after its first failure
	extTmp   = ".tmp"

	fileLock = "lock"

	// maxHeaderLine bounds the envelope line; 1000 recipients of 254
	// characters fit.
	maxHeaderLine = 1 << 20
)

// Spool is the on-disk side of the queue. Each message is one file,
// queue/<id>.msg: a line of JSON with the envelope, then the message as
// received. It is written and fsynced under another name and renamed into
// queue/, so it appears in one atomic step or not at all. A second file,
// queue/<id>.json, holds the message's record once an attempt has failed;
// attempts themselves are first written to the journal (journal.go).
// Moving a message between queue/ and failed/ renames the .msg first and
// the .json after it; a .json always follows its .msg (see settle.go).
//
// Creating a file is by far the most expensive filesystem operation here
// (on the reference VM it costs 0.5 to 0.8 ms of CPU, a rename 30 µs), so
// files of delivered messages are kept in spare/ for reuse instead of
// being created anew for each message (spare.go). Only one process writes
// the spool at a time (lock.go).
type Spool struct {
	root string
	fs   FS
	// Directory fsyncs of the shared areas are group-committed: one fsync
	// covers every rename that happened before it started.
	syncQueue, syncFailed *groupsync.Group
	dirQueue, dirFailed   *dirHandle // nil unless held open (newDirSyncer)
	spares                *sparePool
	// noRecord holds the ids of messages this process created and has
	// written no record for, so that removing a delivered message does
	// not try to unlink a .json that cannot exist (one failed syscall per
	// message). An id not in it may have a record, and is unlinked.
	noRecord sync.Map
	// lengths holds the length of the .msg file of each message this
	// process wrote, so that its file, recycled as a spare, is cut to a
	// shorter next message's length only when it needs to be (an
	// ftruncate per message otherwise).
	lengths sync.Map
	// fresh holds small messages just spooled until their first attempt
	// reads them.
	fresh freshCache
	// held keeps the handles of files just written open for their reuse.
	held heldFiles
}

// openSpool creates the layout under root if needed.
func openSpool(root string, fsys FS) (*Spool, error) {
	if fsys == nil {
		fsys = OSFS{}
	}
	for _, a := range []string{"", areaTmp, areaQueue, areaFailed, areaSpare, areaJournal, areaCtl} {
		if err := os.MkdirAll(filepath.Join(root, a), dirPerm); err != nil {
			return nil, fmt.Errorf("create spool directory: %w", err)
		}
	}
	return newSpool(root, fsys), nil
}

func newSpool(root string, fsys FS) *Spool {
	s := &Spool{root: root, fs: fsys}
	s.spares = newSparePool(filepath.Join(root, areaSpare), fsys, &s.held)
	s.syncQueue, s.dirQueue = newDirSyncer(fsys, filepath.Join(root, areaQueue))
	s.syncFailed, s.dirFailed = newDirSyncer(fsys, filepath.Join(root, areaFailed))
	return s
}

// close releases the directories held open for their fsyncs and the
// handles of message files. The spool stays usable: a later fsync opens
// the directories again, and a later message its file.
func (s *Spool) close() {
	s.dirQueue.close()
	s.dirFailed.close()
	s.held.dropAll()
}

func (s *Spool) msgPath(area, id string) string   { return filepath.Join(s.root, area, id+extMsg) }
func (s *Spool) statePath(area, id string) string { return filepath.Join(s.root, area, id+extState) }

func (s *Spool) syncer(area string) *groupsync.Group {
	if area == areaFailed {
		return s.syncFailed
	}
	return s.syncQueue
}

// create writes a new message into queue/ and returns its size and the
// offset of the message in the file. rec is the record at acceptance; its
// envelope line is written first, then msg as it arrives. account is
// called with each chunk's size before it is written and may refuse it
// (the byte quota). create returns only once the message is durable, and
// leaves nothing behind when it fails. Errors reading msg (the SMTP
// stream) are returned unwrapped, so that the reply names them; disk
// errors are *SpoolError.
//
// The file is written through one buffer: a message that fits in it
// together with its envelope line, which is most of them, costs one
// write(2); a larger one costs one per buffer and a pwrite(2) of its
// length into the envelope line. (The SMTP reader hands over one line per
// Read, and a write per line was 400,000 syscalls for a 30 MB message.)
func (s *Spool) create(rec *Record, msg io.Reader, account func(int64) error) (size, offset int64, err error) {
	id := rec.Envelope.ID
	header, sizeAt, err := encodeHeader(rec)
	if err != nil {
		return 0, 0, &SpoolError{Op: "encode envelope", Err: err}
	}
	f, path, old, held, err := s.newFile(id)
	if err != nil {
		return 0, 0, &SpoolError{Op: "create message file", Err: err}
	}
	done := false
	defer func() {
		if !done {
			s.closeFile(f, held)
			_ = s.fs.Remove(path)
		}
	}()
	size, body, err := writeMessage(f, header, sizeAt, msg, account)
	if err != nil {
		return 0, 0, err
	}
	length := int64(len(header)) + size
	if old > length || old < 0 {
		// A spare that held a longer message: cut off the rest of it.
		if err := f.Truncate(length); err != nil {
			return 0, 0, &SpoolError{Op: "write message file", Err: err}
		}
	}
	if err := f.Sync(); err != nil {
		return 0, 0, &SpoolError{Op: "sync message file", Err: err}
	}
	final := s.msgPath(areaQueue, id)
	if err := s.fs.Rename(path, final); err != nil {
		return 0, 0, &SpoolError{Op: "move message into queue", Err: err}
	}
	done = true
	if err := s.syncQueue.Sync(); err != nil {
		// The rename may or may not survive a power loss, and the client
		// will be told to retry, so the message must not be delivered.
		s.closeFile(f, held)
		_ = s.fs.Remove(final)
		return 0, 0, &SpoolError{Op: "sync queue directory", Err: err}
	}
	// The handle goes with the file to spare/ once the message is
	// delivered (held.go), unless too many are open.
	if !s.held.hold(id, f, held) {
		if err := s.closeFile(f, held); err != nil {
			_ = s.fs.Remove(final)
			return 0, 0, &SpoolError{Op: "close message file", Err: err}
		}
	}
	s.noRecord.Store(id, struct{}{})
	s.lengths.Store(id, length)
	if body != nil {
		s.fresh.put(id, rec, int64(len(header)), body, len(header))
	}
	return size, int64(len(header)), nil
}

// newFile returns a file to write a new message into from its start, and
// how many bytes it holds already (-1: not known): a spare if one is left,
// through the handle it kept open if it did (held reports that), else a
// new, empty file in tmp/.
func (s *Spool) newFile(id string) (f File, path string, size int64, held bool, err error) {
	for {
		sp, ok := s.spares.take()
		if !ok {
			break
		}
		if sp.f != nil {
			if _, err := sp.f.Seek(0, io.SeekStart); err == nil {
				return sp.f, sp.path, sp.size, true, nil
			}
			s.held.release(sp.f)
		}
		if f, err := s.fs.Reuse(sp.path, false); err == nil {
			return f, sp.path, sp.size, false, nil
		}
		// The spare is gone or unusable: drop it and try the next.
		_ = s.fs.Remove(sp.path)
	}
	path = filepath.Join(s.root, areaTmp, id+extMsg)
	f, err = s.fs.Create(path)
	return f, path, 0, false, err
}

// closeFile closes a file newFile returned; held is what it reported.
func (s *Spool) closeFile(f File, held bool) error {
	if held {
		s.held.release(f)
		return nil
	}
	return f.Close()
}

// spoolBufSize is the write buffer for spooling: a 4 KB notification and
// its envelope line are one write, and a large message is written in
// chunks few enough that the syscalls cost less than the copying.
const spoolBufSize = 64 << 10

// spoolBufs pools the write buffers: one per message would be 64 KB of
// garbage per 4 KB notification. Writers do not keep the bytes they are
// given (io.Writer's contract), so a buffer is free again on return.
var spoolBufs = sync.Pool{New: func() any { b := make([]byte, spoolBufSize); return &b }}

// writeMessage writes the envelope line and then msg into f through one
// buffer, and fills in the line's size field (see putSize) once the size
// is known: in the buffer when nothing was written yet, else with one
// WriteAt. account is asked before each write; stream errors are
// returned as they are and disk errors as *SpoolError. A message that fit
// in the buffer with its envelope line, and is small enough for
// freshCache, is also returned as a copy.
func writeMessage(f File, header []byte, sizeAt int, msg io.Reader, account func(int64) error) (n int64, body []byte, err error) {
	bp := spoolBufs.Get().(*[]byte)
	defer spoolBufs.Put(bp)
	buf := (*bp)[:0]
	// early is set once the envelope line is in the file before the size
	// is known, which then needs the WriteAt.
	early := false
	if len(header) >= cap(buf)/2 {
		// An envelope line of hundreds of recipients: write it alone.
		if _, err := f.Write(header); err != nil {
			return 0, nil, &SpoolError{Op: "write message file", Err: err}
		}
		early = true
	} else {
		buf = append(buf, header...)
	}
	var accounted int64
	flush := func() error {
		if account != nil {
			if err := account(n - accounted); err != nil {
				return err
			}
			accounted = n
		}
		if _, err := f.Write(buf); err != nil {
			return &SpoolError{Op: "write message file", Err: err}
		}
		buf = buf[:0]
		return nil
	}
	for {
		if len(buf) == cap(buf) {
			if err := flush(); err != nil {
				return n, nil, err
			}
			early = true
		}
		k, rerr := msg.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		n += int64(k)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, nil, rerr
		}
	}
	if !early {
		putSize(buf[sizeAt:], n)
		if n <= freshMaxMsg {
			body = bytes.Clone(buf[len(header):])
		}
	}
	if len(buf) > 0 || n > accounted {
		if err := flush(); err != nil {
			return n, nil, err
		}
	}
	if early {
		field := make([]byte, sizeWidth)
		putSize(field, n)
		if _, err := f.WriteAt(field, int64(sizeAt)); err != nil {
			return n, nil, &SpoolError{Op: "write message file", Err: err}
		}
	}
	return n, body, nil
}

// writeState replaces area/<id>.json: write <id>.json.tmp, sync it,
// rename it over <id>.json, sync the directory. A reader sees the old
// record or the new one, never a mix.
func (s *Spool) writeState(area string, r *Record) error {
	b, err := encodeRecord(r)
	if err != nil {
		return err
	}
	id := r.Envelope.ID
	s.noRecord.Delete(id) // before the file exists: a crash in between only costs an unlink
	s.held.drop(id)       // a message that needs a record is not recycled soon
	final := s.statePath(area, id)
	tmp := final + extTmp
	_ = s.fs.Remove(tmp) // left by an earlier failure
	f, err := s.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("write record of %s: %w", id, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.fs.Rename(tmp, final)
	}
	if err != nil {
		_ = s.fs.Remove(tmp)
		return fmt.Errorf("write record of %s: %w", id, err)
	}
	if err := s.syncer(area).Sync(); err != nil {
		return fmt.Errorf("sync record of %s: %w", id, err)
	}
	return nil
}

// move renames a message from one area to another, its .msg first and its
// .json after it, and syncs both directories.
func (s *Spool) move(id, from, to string) error {
	s.fresh.take(id)
	s.held.drop(id)
	if err := s.fs.Rename(s.msgPath(from, id), s.msgPath(to, id)); err != nil {
		return fmt.Errorf("move %s from %s/ to %s/: %w", id, from, to, err)
	}
	if err := s.fs.Rename(s.statePath(from, id), s.statePath(to, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("move the record of %s to %s/: %w", id, to, err)
	}
	if err := s.syncer(to).Sync(); err != nil {
		return fmt.Errorf("move %s to %s/: %w", id, to, err)
	}
	if err := s.syncer(from).Sync(); err != nil {
		return fmt.Errorf("move %s out of %s/: %w", id, from, err)
	}
	return nil
}

// remove deletes a message: the .msg goes first (recycled as a spare), so
// the message disappears in one step; a .json left alone by a crash is
// removed at the next start. Nothing is synced: if a power loss undoes
// the removal, the message is delivered again, which the at-least-once
// guarantee allows.
func (s *Spool) remove(area, id string) error {
	s.fresh.take(id)
	length := int64(-1)
	if n, ok := s.lengths.LoadAndDelete(id); ok {
		length = n.(int64)
	}
	if err := s.spares.recycle(s.msgPath(area, id), length, s.held.take(id)); err != nil {
		return fmt.Errorf("remove %s from %s/: %w", id, area, err)
	}
	if _, none := s.noRecord.LoadAndDelete(id); none {
		return nil
	}
	if err := s.fs.Remove(s.statePath(area, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the record of %s: %w", id, err)
	}
	return nil
}

// exists reports whether area holds message id.
func (s *Spool) exists(area, id string) bool {
	_, err := os.Stat(s.msgPath(area, id))
	return err == nil
}

// ids lists the messages in area, in id (arrival) order.
func (s *Spool) ids(area string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, area))
	if err != nil {
		return nil, fmt.Errorf("read %s/: %w", area, err)
	}
	var out []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), extMsg); ok && ValidID(id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// scan reads every message in area. Messages whose files cannot be read
// are returned as problems rather than stopping the scan: one damaged
// message must not keep the others from being delivered.
func (s *Spool) scan(area string) ([]*stored, []error) {
	ids, err := s.ids(area)
	if err != nil {
		return nil, []error{err}
	}
	var out []*stored
	var problems []error
	for _, id := range ids {
		m, err := s.read(area, id)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && !s.exists(area, id) {
				continue // removed since the listing
			}
			problems = append(problems, err)
			continue
		}
		out = append(out, m)
	}
	return out, problems
}
