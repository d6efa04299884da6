package relay

import (
	"errors"
	"io"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
)

// Admit tells, before the message is accepted, whether Send would refuse it
// for its size: it returns the same TooLarge error when the message needs
// the large-message path and delivery.large_messages is reject, or when a
// MIME passthrough message exceeds the request limit. It sends nothing. In
// queue mode the SMTP layer calls it before answering 250, so the client
// gets 552 at DATA instead of a bounce later.
//
// It is cheap for small messages: a size bound decides without reading the
// message. Above it, a MIME message has only its header read, and a JSON
// message in reject mode is converted (as Send would convert it). Other
// problems (content that cannot be converted) are Send's to report; Admit
// returns only size refusals, or an error reading the spool file.
func (r *Relay) Admit(env *envelope.Envelope, raw io.ReaderAt, size int64) error {
	if env.Format == envelope.FormatMIME {
		if base64Len(mimeBound(env, size)) <= graph.MaxRequestBytes {
			return nil
		}
		m, err := prepareMIME(env, raw, size)
		if err != nil {
			return sizeErrorOnly(err)
		}
		if need := base64Len(m.Size()); need > graph.MaxRequestBytes {
			return mimeTooLarge(need)
		}
		return nil
	}
	if r.opts.LargeMessages != config.LargeReject || jsonBound(env, size) <= graph.MaxRequestBytes {
		return nil
	}
	c, err := r.convertMessage(env, raw, size)
	if err != nil {
		return sizeErrorOnly(err)
	}
	if c.need > graph.MaxRequestBytes {
		return rejectLarge(c.need)
	}
	return nil
}

// sizeErrorOnly keeps size refusals and local read errors, and drops
// content errors, which Send reports with the conversion's own wording.
func sizeErrorOnly(err error) error {
	var tl interface{ TooLarge() bool }
	var ic interface{ InvalidContent() bool }
	switch {
	case errors.As(err, &tl) && tl.TooLarge():
		return err
	case errors.As(err, &ic) && ic.InvalidContent():
		return nil
	}
	return err
}

// jsonBound is an upper bound of the sendMail request for a message of size
// bytes. Per input byte, JSON grows at most sixfold: encoding/json writes
// "<", ">", "&" and invalid UTF-8 as six-byte escapes, a Windows-1252 byte
// becomes at most three bytes of UTF-8, and binary content becomes 4/3 as
// base64. Generated parts (file names, @odata.type, up to 1000 parts) and
// the envelope's recipients come on top.
func jsonBound(env *envelope.Envelope, size int64) int64 {
	n := 6*size + 256<<10 + int64(6*(len(env.FromName)+len(env.ReplyTo)+len(env.Mailbox.Address)))
	for _, rc := range env.Recipients {
		n += int64(len(rc)) + 96
	}
	return n
}

// mimeBound is an upper bound of the rewritten passthrough message: the
// header rewrite re-encodes display names of the To and Cc fields it
// changes (at most threefold) and adds From, Reply-To and Bcc.
func mimeBound(env *envelope.Envelope, size int64) int64 {
	n := 3*size + 8<<10 + int64(12*len(env.FromName)+2*len(env.ReplyTo)+2*len(env.Mailbox.Address))
	for _, rc := range env.Recipients {
		n += int64(len(rc)) + 8
	}
	return n
}
