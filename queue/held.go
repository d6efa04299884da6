package queue

import (
	"sync"
)

// heldFiles keeps open the handles of the .msg files this process has
// just written, so that a delivered message's file goes to spare/ with
// its handle (spare.go) and the next message is written through it. Each
// message used to cost an open(2) of a spare and a close(2) of its file,
// the open alone 4 % of the daemon's CPU per message (issue 15).
//
// Holding a handle changes nothing on disk: the file is written, fsynced
// and renamed exactly as before, and POSIX lets an open file be renamed.
// The handles are bounded (maxHeldFiles, counted together with the spare
// pool's), and one is closed as soon as its file is not about to be
// recycled: when an attempt fails and the message gets its record, when
// it moves to failed/, and when the queue closes. On Windows nothing is
// held (holdFiles): there a file deleted while a handle is open keeps its
// name until the handle closes.
type heldFiles struct {
	mu   sync.Mutex
	byID map[string]File
	n    int // handles held, here and in the spare pool
}

// maxHeldFiles bounds the open handles: enough for every message the
// default limits let be in flight at once and the spares they leave,
// far below any process's file limit.
const maxHeldFiles = 256

// hold keeps f, the file just written for message id, open. counted
// says f was a held handle already (a spare's), whose place it keeps;
// otherwise hold reports false, and the caller closes f, when no more
// handles may be held.
func (h *heldFiles) hold(id string, f File, counted bool) bool {
	if !holdFiles {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !counted {
		if h.n >= maxHeldFiles {
			return false
		}
		h.n++
	}
	if h.byID == nil {
		h.byID = map[string]File{}
	}
	h.byID[id] = f
	return true
}

// take returns id's handle and forgets it, or returns nil. The handle
// still counts against the bound until it is released.
func (h *heldFiles) take(id string) File {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.byID[id]
	delete(h.byID, id)
	return f
}

// drop closes id's handle, if one is held.
func (h *heldFiles) drop(id string) {
	if f := h.take(id); f != nil {
		h.release(f)
	}
}

// dropAll closes every handle held for a message.
func (h *heldFiles) dropAll() {
	h.mu.Lock()
	fs := h.byID
	h.byID = nil
	h.mu.Unlock()
	for _, f := range fs {
		h.release(f)
	}
}

// release closes f, a handle taken from here, and frees its place. The
// file was fsynced long before, and nothing was written since, so there
// is no error to report.
func (h *heldFiles) release(f File) {
	_ = f.Close()
	h.mu.Lock()
	h.n--
	h.mu.Unlock()
}
