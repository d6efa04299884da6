package floor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-smtp"
	"github.com/graphrelay/graphrelay/internal/groupsync"
)

// spool is the durable server's directory: a message is written to a new
// file in tmp/, fsynced, renamed into q/, and q/ is fsynced; only then is
// it safe from a crash and the 250 sent. Nothing delivers it: the session
// removes it after the 250, so that q/ stays small.
type spool struct {
	tmp, q string
	prefix string
	seq    atomic.Uint64
	// syncQ group-commits the fsyncs of q/: a message whose rename comes
	// while one runs shares the next one with every other such message.
	syncQ  *groupsync.Group
	queued func(string)
}

// bufSize is the write buffer: a message up to this size is written with
// one write(2), as graphrelay's spool writes it.
const bufSize = 64 << 10

var bufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func openSpool(dir string) (*spool, error) {
	if dir == "" {
		return nil, errors.New("the durable floor server needs a directory")
	}
	s := &spool{tmp: filepath.Join(dir, "tmp"), q: filepath.Join(dir, "q"), prefix: strconv.Itoa(os.Getpid()) + "-"}
	for _, d := range []string{s.tmp, s.q} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	// q/ is held open for its fsyncs, as graphrelay holds its queue
	// directory, so that each costs one fsync and not open, fsync, close.
	qdir, err := os.Open(s.q)
	if err != nil {
		return nil, err
	}
	s.syncQ = groupsync.New(qdir.Sync)
	return s, nil
}

// localError is the reply to a failure of the server's own disk: the
// message was not taken, and the client should try again later.
func localError(err error) error {
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "local error: " + err.Error()}
}

// store makes the message in r durable in q/ and returns its path.
func (s *spool) store(r io.Reader) (string, error) {
	name := s.prefix + strconv.FormatUint(s.seq.Add(1), 10)
	tmp, final := filepath.Join(s.tmp, name), filepath.Join(s.q, name)
	f, err := createFile(tmp)
	if err != nil {
		return "", localError(err)
	}
	if err := s.write(f, r); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", localError(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", localError(err)
	}
	if err := rename(tmp, final); err != nil {
		os.Remove(tmp)
		return "", localError(err)
	}
	if err := s.syncQ.Sync(); err != nil {
		os.Remove(final)
		return "", localError(err)
	}
	return final, nil
}

// write copies r to f through one buffer, so that a small message is one
// write(2). An error reading r is go-smtp's (a message too large, a
// broken connection) and is returned as it is, for go-smtp's reply.
func (s *spool) write(f io.Writer, r io.Reader) error {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	b, n := *bp, 0
	for {
		m, rerr := r.Read(b[n:])
		n += m
		if n == len(b) || (rerr != nil && n > 0) {
			if _, err := f.Write(b[:n]); err != nil {
				return localError(err)
			}
			n = 0
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// durableSession remembers the message it stored until the transaction
// ends, after the 250, and then removes it: the server relays nothing.
type durableSession struct {
	spool *spool
	path  string
}

func (s *durableSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *durableSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (s *durableSession) Data(r io.Reader) error {
	path, err := s.spool.store(r)
	if err != nil {
		return err
	}
	s.path = path
	if s.spool.queued != nil {
		s.spool.queued(path)
	}
	return nil
}

// Reset is go-smtp's end of every transaction, called after the reply to
// the final dot has been written.
func (s *durableSession) Reset() {
	if s.path != "" {
		if err := os.Remove(s.path); err != nil {
			fmt.Fprintf(os.Stderr, "floor: %v\n", err)
		}
		s.path = ""
	}
}

func (s *durableSession) Logout() error {
	s.Reset()
	return nil
}
