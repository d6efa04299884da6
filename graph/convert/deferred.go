package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Deferred is an attachment whose bytes Convert left in the input instead
// of decoding them into memory (Options.DeferAttachments). Its entry in
// Result.Message.Attachments has every property but an empty ContentBytes;
// Open or Bytes read the decoded bytes from the input when they are needed,
// for example chunk by chunk while they are uploaded.
//
// A 30 MB message with a 22 MB attachment would otherwise be held three
// times (the input, the decoded attachment, its base64 in the request);
// deferred, only the input is read into memory, and only while Convert runs.
type Deferred struct {
	// Index is the attachment's position in Result.Message.Attachments.
	Index int
	// Size is the decoded size in bytes.
	Size int64

	offset, length int64 // the transfer-encoded body, as positions in the input
	base64         bool  // else the body is the content (7bit, 8bit, binary)
}

// Open returns a reader of the decoded bytes. input must hold the same
// bytes that Convert read, at the same positions (Convert's reader started
// at offset 0 of input).
func (d Deferred) Open(input io.ReaderAt) io.Reader {
	src := io.NewSectionReader(input, d.offset, d.length)
	if !d.base64 {
		return src
	}
	return &b64Reader{src: src, in: make([]byte, deferredBlock)}
}

// Bytes reads the whole decoded attachment into memory, for an attachment
// small enough to travel inside a JSON request.
func (d Deferred) Bytes(input io.ReaderAt) ([]byte, error) {
	buf := make([]byte, d.Size)
	if _, err := io.ReadFull(d.Open(input), buf); err != nil {
		return nil, fmt.Errorf("read deferred attachment %d: %w", d.Index, err)
	}
	return buf, nil
}

// deferredBlock is how much encoded input a b64Reader decodes at a time.
const deferredBlock = 64 << 10

// b64Reader decodes a base64 body with the same lenient rules as
// decodeBase64, block by block.
type b64Reader struct {
	src  io.Reader
	d    b64Decoder
	in   []byte
	out  []byte // decoded bytes not yet returned
	buf  []byte // backing store for out
	done bool
}

func (r *b64Reader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.done {
			return 0, io.EOF
		}
		n, err := r.src.Read(r.in)
		r.buf = r.d.decode(r.buf[:0], r.in[:n])
		switch {
		case errors.Is(err, io.EOF):
			r.buf, _ = r.d.finish(r.buf) // the warning was given by Convert
			r.done = true
		case err != nil:
			return 0, err
		}
		r.out = r.buf
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// deferAttachment decides whether e's content stays in the input, and if so
// records it and returns true. Only base64 and identity bodies are deferred:
// they can be decoded as a stream with no look-ahead, and they are what
// large attachments use. The body must be a slice of the input buffer (a
// subtree rebuilt by a limit is not).
func (c *converter) deferAttachment(e *entity, body []byte, index int) bool {
	if c.opts.DeferAttachments <= 0 || int64(len(body)) < c.opts.DeferAttachments {
		return false
	}
	off, ok := offsetIn(c.input, body)
	if !ok {
		return false
	}
	d := Deferred{Index: index, offset: off, length: int64(len(body))}
	switch enc := parseCTE(e.header.Get("Content-Transfer-Encoding")); {
	case e.opaque != "" || enc == cteIdentity:
		d.Size = d.length
	case enc == cteBase64:
		d.base64 = true
		if e.didDec {
			d.Size = int64(len(e.decoded))
			break
		}
		size, warn := countBase64(body)
		if warn != "" {
			c.warn("%s", warn)
		}
		d.Size = size
	default:
		return false
	}
	c.deferred = append(c.deferred, d)
	return true
}

// countBase64 returns the decoded size of a base64 body and the warning
// decodeBase64 would give, without keeping the decoded bytes.
func countBase64(body []byte) (int64, string) {
	var d b64Decoder
	var n int64
	scratch := make([]byte, 0, deferredBlock*3/4+3)
	for len(body) > 0 {
		k := min(len(body), deferredBlock)
		n += int64(len(d.decode(scratch[:0], body[:k])))
		body = body[k:]
	}
	tail, warn := d.finish(scratch[:0])
	return n + int64(len(tail)), warn
}

// offsetIn returns the position of part within whole when part is a slice
// of whole's backing array. The parser only ever reslices the input, so a
// part's capacity tells its offset; the pointer comparison confirms it.
func offsetIn(whole, part []byte) (int64, bool) {
	if len(part) == 0 || len(whole) == 0 {
		return 0, false
	}
	off := cap(whole) - cap(part)
	if off < 0 || off+len(part) > len(whole) || &whole[off] != &part[0] {
		return 0, false
	}
	return int64(off), true
}

// detach makes sure an attachment kept in memory does not point into the
// input buffer (identity-encoded parts are slices of it), so that the
// buffer can be freed as soon as Convert returns.
func (c *converter) detach(b []byte) []byte {
	if c.opts.DeferAttachments <= 0 {
		return b
	}
	if _, ok := offsetIn(c.input, b); ok {
		return bytes.Clone(b)
	}
	return b
}
