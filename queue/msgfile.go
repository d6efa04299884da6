package queue

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// The .msg file: the record at acceptance as one line of JSON, then the
// message as received. FORMAT.md describes it for admins.

// encodeHeader renders the record at acceptance as the .msg file's first
// line. The message's size is not known yet when the line is written, so
// envelope.size is -1 there: the message is the rest of the file.
func encodeHeader(rec *Record) ([]byte, error) {
	r := *rec
	r.Envelope.Size = -1
	line, err := json.Marshal(&r)
	if err != nil {
		return nil, err
	}
	if len(line) >= maxHeaderLine {
		return nil, fmt.Errorf("envelope of %d bytes exceeds the spool's %d-byte limit", len(line), maxHeaderLine)
	}
	return append(line, '\n'), nil
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
func (s *Spool) read(area, id string) (*stored, error) {
	f, err := os.Open(s.msgPath(area, id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rec, offset, err := readEnvelopeLine(f)
	if err != nil {
		return nil, fmt.Errorf("%s/%s%s: %w", area, id, extMsg, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(s.statePath(area, id)); err == nil {
		if rec, err = decodeRecord(b); err != nil {
			return nil, fmt.Errorf("%s/%s%s: %w", area, id, extState, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if rec.Envelope.ID != id {
		return nil, fmt.Errorf("%s/%s: the record names queue id %s", area, id, rec.Envelope.ID)
	}
	rec.Envelope.Size = fi.Size() - offset
	return &stored{rec: rec, offset: offset}, nil
}

// openMessage opens a message's bytes.
func (s *Spool) openMessage(area, id string, offset, size int64) (*os.File, *io.SectionReader, error) {
	f, err := os.Open(s.msgPath(area, id))
	if err != nil {
		return nil, nil, err
	}
	return f, io.NewSectionReader(f, offset, size), nil
}
