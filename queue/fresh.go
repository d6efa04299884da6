package queue

import (
	"bytes"
	"io"
	"sync"
)

// freshCache keeps small messages just spooled, their bytes and their
// record at acceptance, until their first attempt reads them, so that
// the usual message is not opened and read back from the file it was
// written to a moment before: that was an open, a pread and a close per
// message, and for a message that waited for a free slot of its mailbox
// (parked, see item) another open, read, fstat and close of the .msg, a
// failed open of a .json that cannot exist yet, and a JSON decode. The
// file stays the truth: it is durable before the 250, it is what every
// later attempt, notice and admin command reads, and what is here is the
// same bytes and the record the envelope line holds. The cache is
// bounded, so that messages that wait (a throttled mailbox) only fill it
// up to freshMaxBytes, after which new messages are read from their
// files as before. The preflight before 250 reads the bytes without
// taking them (Spool.peekMessage): it runs first, and taking them there
// left every attempt reading the file back.
type freshCache struct {
	mu    sync.Mutex
	m     map[string]*freshEntry
	bytes int
}

type freshEntry struct {
	// rec and offset are the record at acceptance and where the message
	// starts in its file; rec is nil once Queue.record has taken it.
	rec    *Record
	offset int64
	body   []byte
	cost   int
}

const (
	freshMaxMsg   = 32 << 10 // larger messages are not kept
	freshMaxBytes = 8 << 20  // all kept messages and records together
)

// put keeps b, which the caller no longer changes, for id, with its
// record; lineLen, the envelope line's length, stands for the record's
// size in memory.
func (c *freshCache) put(id string, rec *Record, offset int64, b []byte, lineLen int) {
	if len(b) > freshMaxMsg {
		return
	}
	cost := len(b) + lineLen
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes+cost > freshMaxBytes {
		return
	}
	if c.m == nil {
		c.m = map[string]*freshEntry{}
	}
	c.m[id] = &freshEntry{rec: rec, offset: offset, body: b, cost: cost}
	c.bytes += cost
}

// take returns and forgets id's bytes (and record), or nil.
func (c *freshCache) take(id string) []byte { return c.get(id, true) }

// get returns id's bytes, or nil, and forgets them (and the record) if
// take is set.
func (c *freshCache) get(id string, take bool) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return nil
	}
	if take {
		delete(c.m, id)
		c.bytes -= e.cost
	}
	return e.body
}

// takeRecord returns and forgets id's record at acceptance, keeping its
// bytes for take.
func (c *freshCache) takeRecord(id string) (*Record, int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || e.rec == nil {
		return nil, 0, false
	}
	rec := e.rec
	e.rec = nil
	return rec, e.offset, true
}

// nopCloser is the Closer of a message served from memory.
type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// fromMemory serves b like a file's section.
func fromMemory(b []byte) (io.Closer, *io.SectionReader) {
	return nopCloser{}, io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b)))
}
