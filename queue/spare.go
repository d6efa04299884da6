package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// maxSpares bounds the files kept for reuse: enough for a burst that
// one mailbox queues (at real Graph's pace one mailbox delivers about 25
// messages a second, so a burst of a thousand waits in queue/), so that
// the next such burst reuses them instead of creating its files again,
// and few enough that a drained backlog does not leave thousands of empty
// files. An emptied file costs an inode and no data; creating one costs
// 0.2 to 0.5 ms of CPU on the reference VM's ext4, and more right after
// many files were deleted (the inode allocator skips recently deleted
// inodes), against 20 µs for a rename.
const maxSpares = 1024

// spareLow and spareHigh are the running daemon's stock of spare files:
// when a message takes the pool below spareLow, a background filler
// creates empty files up to spareHigh, so that a growing queue (one
// mailbox allows 4 Graph requests at a time, and a burst outruns them)
// does not put a file creation, the dearest filesystem operation, between
// a message's last byte and its 250. The stock is small because every
// start pays for it (a test suite starts hundreds of queues); the files a
// burst needed are kept afterwards, up to maxSpares.
const (
	spareLow  = 16
	spareHigh = 48
)

// spareDirtyFor is how long a recycled file may keep the bytes of the
// message it held before the filler empties it. Emptying a file frees its
// blocks, and writing the next message into it allocates them again: on
// the reference VM's ext4 (mounted with discard) the truncate(2) alone
// was 0.75 ms of waiting and 4 % of the daemon's CPU per message, and
// the reallocation adds half as much again. A file reused within this
// time is overwritten instead, and cut to the new message's length only
// when that is shorter, so a steady flow of mail empties no file at all;
// one that waits longer is emptied, so no delivered message lingers in
// spare/ for more than about this long while the daemon runs (and a
// stopped daemon has emptied them all, see sweepAll).
const spareDirtyFor = time.Second

// spare is a file in spare/.
type spare struct {
	path string
	// size is how many bytes the file holds: 0 once emptied, the length
	// of the message it held, or -1 when that is not known.
	size int64
	// since is when a file that holds bytes was recycled.
	since time.Time
	// f is the file's handle, kept open since it was written (held.go),
	// or nil.
	f File
}

// sparePool keeps the files of delivered messages for new ones. A spare
// file holds the bytes of the message it was recycled from until it is
// reused (and overwritten) or, after spareDirtyFor, emptied by the filler
// (see spareDirtyFor); the files the filler creates are empty.
type sparePool struct {
	dir string
	fs  FS
	// held counts the spares' open handles and closes them.
	held *heldFiles
	// dirtyFor is spareDirtyFor; tests shorten it.
	dirtyFor time.Duration

	mu    sync.Mutex
	files []spare // a stack: the file recycled last is reused first
	seq   uint64
	// low is signalled when the pool falls below spareLow, and dirty when
	// a file that holds bytes is recycled; nil until a filler runs.
	low, dirty chan struct{}
}

func newSparePool(dir string, fs FS, held *heldFiles) *sparePool {
	return &sparePool{dir: dir, fs: fs, held: held, dirtyFor: spareDirtyFor, seq: uint64(time.Now().UnixNano())}
}

// take returns a spare file, if any. A handle it comes with is the
// caller's to use or release.
func (p *sparePool) take() (spare, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.files) == 0 {
		return spare{}, false
	}
	sp := p.files[len(p.files)-1]
	p.files = p.files[:len(p.files)-1]
	if len(p.files) < spareLow && p.low != nil {
		signal(p.low)
	}
	return sp, true
}

// signal wakes the filler without waiting for it.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// fill keeps the pool stocked (see spareLow) and empties the files that
// held a message for longer than dirtyFor, until stop is closed. The
// files it creates are empty, so nothing is fsynced: a crash leaves empty
// files in spare/, which the next start adopts.
func (p *sparePool) fill(stop <-chan struct{}) {
	p.mu.Lock()
	p.low = make(chan struct{}, 1)
	p.dirty = make(chan struct{}, 1)
	low, dirty := p.low, p.dirty
	p.mu.Unlock()
	low <- struct{}{} // stock up at the start
	if p.hasDirty() {
		dirty <- struct{}{}
	}
	// The sweep's timer runs only while a file holds bytes: an idle
	// daemon is not woken.
	sweep := time.NewTimer(time.Hour)
	sweep.Stop()
	armed := false
	for {
		select {
		case <-stop:
			sweep.Stop()
			return
		case <-dirty:
			if !armed {
				sweep.Reset(p.dirtyFor)
				armed = true
			}
			continue
		case <-sweep.C:
			armed = false
			if next, ok := p.sweep(time.Now().Add(-p.dirtyFor)); ok {
				sweep.Reset(max(time.Until(next.Add(p.dirtyFor)), time.Millisecond))
				armed = true
			}
			continue
		case <-low:
		}
		for {
			select {
			case <-stop:
				sweep.Stop()
				return
			default:
			}
			p.mu.Lock()
			enough := len(p.files) >= spareHigh
			p.seq++
			name := filepath.Join(p.dir, "s"+strconv.FormatUint(p.seq, 36))
			p.mu.Unlock()
			if enough {
				break
			}
			f, err := p.fs.Create(name)
			if err != nil {
				break // a full disk: the next message creates its own file
			}
			if err := f.Close(); err != nil {
				_ = p.fs.Remove(name)
				break
			}
			p.mu.Lock()
			p.files = append(p.files, spare{path: name})
			p.mu.Unlock()
		}
	}
}

// hasDirty reports whether a spare file holds bytes.
func (p *sparePool) hasDirty() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, sp := range p.files {
		if sp.size != 0 {
			return true
		}
	}
	return false
}

// sweep empties up to sweepBatch spare files that hold bytes and were
// recycled before cutoff (any time, if cutoff is zero), and returns when
// the oldest of those it left was recycled, if any. The files being
// emptied are out of the pool meanwhile, so no message is written into
// one; an emptied file goes to the bottom of the stack, below the files
// that are reused without emptying.
func (p *sparePool) sweep(cutoff time.Time) (oldest time.Time, left bool) {
	p.mu.Lock()
	var due []spare
	kept := p.files[:0]
	for _, sp := range p.files {
		switch {
		case sp.size == 0:
			kept = append(kept, sp)
		case (cutoff.IsZero() || !sp.since.After(cutoff)) && len(due) < sweepBatch:
			due = append(due, sp)
		default:
			kept = append(kept, sp)
			if !left || sp.since.Before(oldest) {
				oldest, left = sp.since, true
			}
		}
	}
	p.files = kept
	p.mu.Unlock()
	var emptied []spare
	for _, sp := range due {
		// A file unused this long is not worth a handle either.
		if sp.f != nil {
			p.held.release(sp.f)
		}
		if err := p.fs.Empty(sp.path); err != nil {
			_ = p.fs.Remove(sp.path)
			continue
		}
		emptied = append(emptied, spare{path: sp.path})
	}
	p.mu.Lock()
	p.files = append(emptied, p.files...)
	p.mu.Unlock()
	return oldest, left
}

// sweepBatch bounds the files one sweep takes out of the pool: emptying
// the thousand a burst left takes most of a second, and a new burst
// meanwhile should find them, not create files of its own. The filler
// comes back at once for the rest.
const sweepBatch = 64

// sweepAll empties every spare file that holds bytes: the queue calls it
// when it closes, once no attempt is left to recycle a file, so that a
// stopped daemon leaves no delivered message in spare/.
func (p *sparePool) sweepAll() {
	for {
		if _, left := p.sweep(time.Time{}); !left {
			return
		}
	}
}

// recycle removes path, a file of size bytes (-1: not known), from where
// it is, in one rename, and keeps it as a spare, with its handle f if it
// has one open (held.go; nil otherwise); with the pool full it is deleted
// instead. While a filler runs, the file keeps its bytes (and its handle)
// until it is reused or the filler empties it (see spareDirtyFor);
// without one (a queue not started, or a command working on a stopped
// daemon's spool) it is emptied at once, and its handle released, since
// nothing would do either later. A handle is released too whenever the
// file is not kept.
func (p *sparePool) recycle(path string, size int64, f File) error {
	p.mu.Lock()
	full := len(p.files) >= maxSpares
	p.seq++
	name := filepath.Join(p.dir, "s"+strconv.FormatUint(p.seq, 36))
	swept := p.dirty != nil
	p.mu.Unlock()
	if f != nil && (full || !swept) {
		// Without a filler nothing would release the handle later.
		p.held.release(f)
		f = nil
	}
	if full {
		return p.fs.Remove(path)
	}
	if err := p.fs.Rename(path, name); err != nil {
		if f != nil {
			p.held.release(f)
		}
		return err
	}
	if !swept && size != 0 {
		if err := p.fs.Empty(name); err != nil {
			return p.fs.Remove(name)
		}
		size = 0
	}
	p.mu.Lock()
	p.files = append(p.files, spare{path: name, size: size, since: time.Now(), f: f})
	if size != 0 && p.dirty != nil {
		signal(p.dirty)
	}
	p.mu.Unlock()
	return nil
}

// load adopts the spare files a previous run left, emptying any that a
// crash caught holding the bytes of a message.
func (p *sparePool) load() error {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return fmt.Errorf("read spare/: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files = p.files[:0]
	for _, e := range entries {
		path := filepath.Join(p.dir, e.Name())
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || len(p.files) >= maxSpares {
			if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("remove spare %s: %w", path, err)
			}
			continue
		}
		if info.Size() > 0 {
			if err := os.Truncate(path, 0); err != nil {
				return fmt.Errorf("empty spare %s: %w", path, err)
			}
		}
		p.files = append(p.files, spare{path: path})
	}
	return nil
}
