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
// files. An empty file costs an inode and no data; creating one costs
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

// sparePool keeps emptied files of delivered messages for new ones. A
// spare file is always empty when it is in the pool: it is truncated when
// it is recycled, so no mail lingers in spare/.
type sparePool struct {
	dir string
	fs  FS

	mu    sync.Mutex
	names []string
	seq   uint64
	// low is signalled when the pool falls below spareLow; nil until a
	// filler runs.
	low chan struct{}
}

func newSparePool(dir string, fs FS) *sparePool {
	return &sparePool{dir: dir, fs: fs, seq: uint64(time.Now().UnixNano())}
}

// take returns a spare file's path, if any.
func (p *sparePool) take() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.names) == 0 {
		return "", false
	}
	path := p.names[len(p.names)-1]
	p.names = p.names[:len(p.names)-1]
	if len(p.names) < spareLow && p.low != nil {
		select {
		case p.low <- struct{}{}:
		default:
		}
	}
	return path, true
}

// fill keeps the pool stocked (see spareLow) until stop is closed. The
// files are empty, so nothing is fsynced: a crash leaves empty files in
// spare/, which the next start adopts.
func (p *sparePool) fill(stop <-chan struct{}) {
	p.mu.Lock()
	p.low = make(chan struct{}, 1)
	low := p.low
	p.mu.Unlock()
	low <- struct{}{} // stock up at the start
	for {
		select {
		case <-stop:
			return
		case <-low:
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.mu.Lock()
			enough := len(p.names) >= spareHigh
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
			p.names = append(p.names, name)
			p.mu.Unlock()
		}
	}
}

// recycle removes path from where it is, in one rename, and keeps the
// emptied file as a spare; with the pool full it is deleted instead.
func (p *sparePool) recycle(path string) error {
	p.mu.Lock()
	full := len(p.names) >= maxSpares
	p.seq++
	name := filepath.Join(p.dir, "s"+strconv.FormatUint(p.seq, 36))
	p.mu.Unlock()
	if full {
		return p.fs.Remove(path)
	}
	if err := p.fs.Rename(path, name); err != nil {
		return err
	}
	if err := p.fs.Empty(name); err != nil {
		return p.fs.Remove(name)
	}
	p.mu.Lock()
	p.names = append(p.names, name)
	p.mu.Unlock()
	return nil
}

// load adopts the spare files a previous run left, emptying any that a
// crash caught before it was truncated.
func (p *sparePool) load() error {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return fmt.Errorf("read spare/: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.names = p.names[:0]
	for _, e := range entries {
		path := filepath.Join(p.dir, e.Name())
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || len(p.names) >= maxSpares {
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
		p.names = append(p.names, path)
	}
	return nil
}
