package tlsconf

import (
	"context"
	"os"
	"time"
)

// defaultWatchInterval is used when Watch is given no interval. Renewals
// happen days before expiry, so a minute's delay costs nothing.
const defaultWatchInterval = time.Minute

// fileStamp is what Watch compares between polls. Identity (os.SameFile)
// catches the rename and symlink swaps that certbot and atomic writers do
// even when the new file has the old one's size and a coarse mtime.
type fileStamp struct {
	info    os.FileInfo // nil when the file could not be stat'ed
	modTime int64
	size    int64
}

func statFile(path string) fileStamp {
	fi, err := os.Stat(path) // follows symlinks: certbot's live/ links point at archive/
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{info: fi, modTime: fi.ModTime().UnixNano(), size: fi.Size()}
}

func (a fileStamp) equal(b fileStamp) bool {
	if a.info == nil || b.info == nil {
		return a.info == nil && b.info == nil
	}
	return a.modTime == b.modTime && a.size == b.size && os.SameFile(a.info, b.info)
}

// stamp covers both files of the pair.
type stamp struct{ cert, key fileStamp }

func statPair(certFile, keyFile string) stamp {
	return stamp{cert: statFile(certFile), key: statFile(keyFile)}
}

func (a stamp) equal(b stamp) bool { return a.cert.equal(b.cert) && a.key.equal(b.key) }

// Watch polls the certificate and key files every interval until ctx is
// done, and reloads when either changed. It blocks; run it in its own
// goroutine.
//
// A renewal is two writes, so a poll can see the new key with the old
// certificate (or a truncated file). Such a load fails the key-match
// check, the good certificate stays in service, and the next poll tries
// again, because applied still describes the old files. Only when the
// same changed files fail twice, that is when they have settled and are
// still wrong, is it logged as a warning.
func (m *Manager) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = defaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var w watchState
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.poll(&w)
	}
}

// watchState remembers failed loads between polls, to keep the log quiet
// while a renewal is mid-write and to warn once about files that stay bad.
type watchState struct {
	failed   stamp
	failures int
}

func (m *Manager) poll(w *watchState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := statPair(m.certFile, m.keyFile)
	if st.equal(m.applied) {
		w.failures = 0
		return
	}
	err := m.reloadLocked()
	if err == nil {
		w.failures = 0
		return
	}
	if w.failures > 0 && st.equal(w.failed) {
		w.failures++
	} else {
		w.failed, w.failures = st, 1
	}
	switch w.failures {
	case 1:
		m.log.Debug("tls certificate files changed but do not load yet; retrying at the next poll", "err", err)
	case 2:
		m.log.Warn("tls certificate files changed and do not load; still serving the previous certificate", "err", err)
	}
}
