package relay

import (
	"bytes"
	"errors"
	"io"
	"unicode/utf8"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/graph/convert"
)

// Admit tells, before the message is accepted, whether Send would refuse
// it for what can be known without sending (queue.Admitter): an empty
// message, which no format can carry (InvalidContent, answered 554 5.6.0),
// and the size refusals, with the same TooLarge error Send returns when
// the message needs the large-message path and delivery.large_messages is
// reject, or when a MIME passthrough message exceeds the request limit.
// It sends nothing. The delivery layer calls it in both modes before the
// SMTP layer answers 250, so the client gets 552 or 554 at DATA instead of
// a dead letter later.
//
// It is cheap for small messages: the emptiness check reads up to the
// first byte that is not white space, and a size bound decides without
// reading further. Above the bound, a MIME message has only its header
// read, and a JSON message in reject mode is converted (as Send would
// convert it). Other content problems are Send's to report; Admit returns
// only these refusals, or an error reading the spool file.
func (r *Relay) Admit(env *envelope.Envelope, raw io.ReaderAt, size int64) error {
	// Empty as Send's converter judges it: the whole message for JSON,
	// the part PrepareMIME reads for MIME passthrough.
	window := size
	if env.Format == envelope.FormatMIME {
		window = convert.MIMEHeadSize(size)
	}
	blank, err := isBlank(raw, window)
	if err != nil {
		return err
	}
	if blank {
		return errEmpty
	}
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

// errEmpty is a message with no content but white space, which the
// converter refuses in both formats ("empty message").
var errEmpty = contentError("empty message: the client sent no header and no body")

// contentError is a message no format can carry; the SMTP layer answers
// 554 5.6.0.
type contentError string

func (e contentError) Error() string        { return string(e) }
func (e contentError) InvalidContent() bool { return true }

// isBlank reports whether the first size bytes are only white space, as
// the converter judges it (bytes.TrimSpace, which knows Unicode's
// spaces), reading until the first byte that is not. It reads 512 bytes
// first, which settles nearly every message (its header starts at once),
// and doubles the read up to 32 KB, so that a message that does start
// with pages of blank lines costs few reads. A multi-byte space cut in two
// by the end of a read is read again whole with the next one: alone, its
// first bytes are not a space, and would pass as content a message the
// converter then refuses as empty, after the 250.
func isBlank(raw io.ReaderAt, size int64) (bool, error) {
	buf := make([]byte, 512)
	for off := int64(0); off < size; {
		n, err := raw.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && err != io.EOF {
			return false, err
		}
		if n == 0 {
			break
		}
		rest := bytes.TrimSpace(buf[:n])
		if len(rest) > 0 {
			// A rune's first bytes at the end of a read, with more to come.
			cut := off+int64(n) < size && len(rest) < utf8.UTFMax && !utf8.FullRune(rest) &&
				bytes.HasSuffix(buf[:n], rest) && len(rest) < n
			if !cut {
				return false, nil
			}
			n -= len(rest)
		}
		off += int64(n)
		if len(buf) < 32<<10 {
			buf = make([]byte, 2*len(buf))
		}
	}
	return true, nil
}
