package queue

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
)

// The .msg file: the record at acceptance as one line of JSON, then the
// message as received. FORMAT.md describes it for admins.

// The envelope line carries the message's length, so that a .msg file
// cut short (a bad restore, a disk error, a copy of a file being written)
// is recognised and quarantined instead of being delivered truncated. The
// length is not known when the line is rendered, so the line holds a
// fixed-width field, a right-aligned number padded with spaces (JSON
// allows whitespace before a value), which is filled in once the message
// is written and before the file is fsynced. Files written before this
// have size -1: the message is the rest of the file.
const (
	sizeKey         = `"size":`
	sizeWidth       = 19                  // digits of the largest int64
	sizePlaceholder = int64(1<<62) + 1234 // 19 digits, unlikely anywhere else
)

// encodeHeader renders the record at acceptance as the .msg file's first
// line, and returns where in it the size field is (see putSize).
func encodeHeader(rec *Record) (line []byte, sizeAt int, err error) {
	r := *rec
	r.Envelope.Size = sizePlaceholder
	line, err = json.Marshal(&r)
	if err != nil {
		return nil, 0, err
	}
	if len(line) >= maxHeaderLine {
		return nil, 0, fmt.Errorf("envelope of %d bytes exceeds the spool's %d-byte limit", len(line), maxHeaderLine)
	}
	field := []byte(sizeKey + strconv.FormatInt(sizePlaceholder, 10))
	i := bytes.Index(line, field)
	if i < 0 || bytes.Count(line, field) != 1 {
		return nil, 0, errors.New("envelope line has no unique size field")
	}
	return append(line, '\n'), i + len(sizeKey), nil
}

// putSize writes n into a size field that encodeHeader left.
func putSize(field []byte, n int64) {
	d := strconv.AppendInt(make([]byte, 0, sizeWidth), n, 10)
	pad := sizeWidth - len(d)
	for i := range pad {
		field[i] = ' '
	}
	copy(field[pad:sizeWidth], d)
}

// readEnvelopeLine reads a .msg file's envelope line and returns the
// record at acceptance and the offset where the message starts. The line
// is graphrelay's own JSON, not a mail header: the message's header block
// is split only by mailhdr.ReadBlock.
func readEnvelopeLine(r io.Reader) (*Record, int64, error) {
	br := bufio.NewReaderSize(r, 16<<10)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull || len(line) > maxHeaderLine {
			return nil, 0, fmt.Errorf("read envelope line: %w", noEOF(err))
		}
	}
	rec, err := decodeRecord(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		return nil, 0, err
	}
	return rec, int64(len(line)), nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// stored is a message as read from the spool.
type stored struct {
	rec    *Record
	offset int64 // where the message starts in the .msg file
}

// read loads a message: the envelope line of its .msg file, replaced by
// its .json record when there is one; the size is the rest of the file.
// An entry that exists but cannot be used is a *damage naming the file at
// fault. When only the record is damaged, read returns the message as its
// envelope line describes it together with the *damage, so that settle
// can deliver it; every other caller treats the error as fatal.
func (s *Spool) read(area, id string) (*stored, error) {
	broken := func(ext string, err error) *damage { return &damage{area: area, id: id, ext: ext, err: err} }
	f, err := openRead(s.msgPath(area, id))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, broken(extMsg, err)
	}
	defer f.Close()
	rec, offset, err := readEnvelopeLine(f)
	if err != nil {
		if errors.Is(err, errVersion) {
			return nil, fmt.Errorf("%s/%s%s: %w", area, id, extMsg, err)
		}
		return nil, broken(extMsg, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, broken(extMsg, err)
	}
	if rec.Envelope.ID != id {
		return nil, broken(extMsg, fmt.Errorf("the envelope line names queue id %s", rec.Envelope.ID))
	}
	body := fi.Size() - offset
	if want := rec.Envelope.Size; want >= 0 && want != body {
		return nil, broken(extMsg, fmt.Errorf("message cut short or changed: %d bytes, the envelope line says %d", body, want))
	}
	rec.Envelope.Size = body
	st := &stored{rec: rec, offset: offset}
	b, err := readFile(s.statePath(area, id))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, broken(extState, err)
	}
	r, err := decodeRecord(b)
	if err != nil {
		if errors.Is(err, errVersion) {
			return nil, fmt.Errorf("%s/%s%s: %w", area, id, extState, err)
		}
		return st, broken(extState, err)
	}
	if r.Envelope.ID != id {
		return st, broken(extState, fmt.Errorf("the record names queue id %s", r.Envelope.ID))
	}
	r.Envelope.Size = body
	st.rec = r
	return st, nil
}

// openMessage opens a message's bytes: the first time a message just
// spooled is read, from memory (see freshCache), else from its file.
func (s *Spool) openMessage(area, id string, offset, size int64) (io.Closer, *io.SectionReader, error) {
	return s.open(area, id, offset, size, true)
}

// peekMessage is openMessage for the preflight before 250, which reads a
// message just spooled before its first attempt does: the bytes in memory
// are left there for the attempt.
func (s *Spool) peekMessage(area, id string, offset, size int64) (io.Closer, *io.SectionReader, error) {
	return s.open(area, id, offset, size, false)
}

func (s *Spool) open(area, id string, offset, size int64, take bool) (io.Closer, *io.SectionReader, error) {
	if area == areaQueue {
		if b := s.fresh.get(id, take); b != nil && int64(len(b)) == size {
			c, r := fromMemory(b)
			return c, r, nil
		}
	}
	f, err := openRead(s.msgPath(area, id))
	if err != nil {
		return nil, nil, err
	}
	return f, io.NewSectionReader(f, offset, size), nil
}
