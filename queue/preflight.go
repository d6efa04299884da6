package queue

import (
	"io"

	"github.com/graphrelay/graphrelay/envelope"
)

// Admitter is the delivery seam's check before 250: whether a message, as
// the client sent it, has a path to Graph. It returns the error Send
// would return for what is knowable without sending: a message too large
// for its actual path and format (TooLarge, which smtpd answers 552
// 5.3.4) or one that cannot be converted, such as an empty message
// (InvalidContent, 554 5.6.0). graph/relay's Relay.Admit implements it.
//
// Both modes call it on the staged bytes before they take responsibility
// for the message: queue mode on the spooled file, before the message is
// scheduled (a refused one is removed again), direct mode before the
// message waits in the mailbox's gate. The interface lives here, with its
// consumer, and not in smtpd, because only the Deliverer holds the bytes
// in a form that can be read twice.
type Admitter interface {
	Admit(env *envelope.Envelope, raw io.ReaderAt, size int64) error
}

// admit runs the preflight on a message accepted into queue/, and takes
// it out again when the preflight refuses it, so that nothing the client
// was refused stays behind.
func (q *Queue) admit(it *item) error {
	if q.opts.Admitter == nil {
		return nil
	}
	f, msg, err := q.spool.peekMessage(areaQueue, it.id, it.offset, it.rec.Envelope.Size)
	if err != nil {
		q.drop(it)
		return &SpoolError{Op: "read back for the preflight", Err: err}
	}
	err = q.opts.Admitter.Admit(&it.rec.Envelope, msg, it.rec.Envelope.Size)
	f.Close()
	if err != nil {
		q.drop(it)
	}
	return err
}

// drop removes a message that was written but never scheduled.
func (q *Queue) drop(it *item) {
	if err := q.spool.remove(areaQueue, it.id); err != nil {
		q.log.Error("cannot remove a message refused before 250 from the spool; it would be delivered after a restart",
			append(MsgAttrs(it.rec), "err", err, "hint", "remove "+it.id+" with graphrelay queue delete")...)
	}
	q.release(1, it.size)
}
