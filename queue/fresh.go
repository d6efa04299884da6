package queue

import (
	"bytes"
	"io"
	"sync"
)

// freshCache keeps the bytes of small messages just spooled until their
// first attempt reads them, so that the usual message, sent at once, is
// not opened and read back from the file it was written to a moment
// before: that was an open, four fcntl, an epoll_ctl, a pread and a close
// per message. The file stays the truth: it is durable before the 250, it
// is what every later attempt, notice and admin command reads, and the
// copy here is the same bytes. The cache is bounded, so messages that
// wait (a throttled mailbox) only fill it up to freshMaxBytes, after which
// new messages are read from their files as before.
type freshCache struct {
	mu    sync.Mutex
	m     map[string][]byte
	bytes int
}

const (
	freshMaxMsg   = 32 << 10 // larger messages are not kept
	freshMaxBytes = 4 << 20  // all kept messages together
)

// put keeps b, which the caller no longer changes, for id.
func (c *freshCache) put(id string, b []byte) {
	if len(b) > freshMaxMsg {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes+len(b) > freshMaxBytes {
		return
	}
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[id] = b
	c.bytes += len(b)
}

// take returns and forgets id's bytes, or nil.
func (c *freshCache) take(id string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[id]
	if ok {
		delete(c.m, id)
		c.bytes -= len(b)
	}
	return b
}

// nopCloser is the Closer of a message served from memory.
type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// fromMemory serves b like a file's section.
func fromMemory(b []byte) (io.Closer, *io.SectionReader) {
	return nopCloser{}, io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b)))
}
