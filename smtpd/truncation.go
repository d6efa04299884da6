package smtpd

import (
	"errors"
	"io"
)

// errConnectionLost is the message stream ending because the client's
// connection did: the message may be cut short, and the client saw no
// reply and will send it again.
var errConnectionLost = errors.New("the client's connection ended before the message was complete")

// cutShortGuard wraps a message stream so that its end counts only while
// the client's connection is still readable.
//
// go-smtp v0.25.1 copies a BDAT chunk with io.Copy from an io.LimitReader:
// when the client disconnects in the middle of a BDAT LAST chunk, the copy
// ends without an error, and the session sees a clean end of message
// although fewer bytes than the chunk declared arrived. Delivering it would
// send a truncated copy, and then the whole one when the client, which got
// no reply, resends. A DATA cut the same way already ends with an error.
// The guard turns the end of the stream into errConnectionLost when a
// read on the connection under the session has failed for a reason other
// than a timeout (trackedConn.Read), so the Deliverer aborts before
// anything is queued or sent.
//
// Limit: a TLS client that sends close_notify in the middle of a chunk and
// only then closes the socket ends the chunk at the TLS layer, above the
// connection the guard watches; such a chunk is still taken as complete.
func cutShortGuard(r io.Reader, conn *trackedConn) io.Reader {
	if conn == nil {
		return r
	}
	return &guardedStream{r: r, conn: conn}
}

type guardedStream struct {
	r    io.Reader
	conn *trackedConn
}

func (g *guardedStream) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err == io.EOF && g.conn.readFailed.Load() {
		return n, errConnectionLost
	}
	return n, err
}
