package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
)

// Sender relays one message held in raw.
type Sender interface {
	Send(ctx context.Context, env *envelope.Envelope, raw io.ReaderAt, size int64) (graph.Receipt, error)
}

// Direct is the synchronous Deliverer.
type Direct struct {
	sender Sender
	tmpDir string
	// Observer receives delivery events; set it before use.
	Observer Observer
}

// NewDirect returns a Deliverer that sends inline. Message bytes are staged
// in tmpDir ("" means the system default) so a 35 MB message is not held in
// memory while it is converted.
func NewDirect(s Sender, tmpDir string) *Direct {
	return &Direct{sender: s, tmpDir: tmpDir, Observer: nopObserver{}}
}

// Deliver stages msg in a temporary file and sends it.
func (d *Direct) Deliver(ctx context.Context, env *envelope.Envelope, msg io.Reader) error {
	f, err := os.CreateTemp(d.tmpDir, "graphrelay-"+env.ID+"-*.eml")
	if err != nil {
		return stagingError{fmt.Errorf("stage message: %w", err)}
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	n, err := io.Copy(f, msg)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return stagingError{fmt.Errorf("stage message: %w", err)}
		}
		// Errors from the SMTP stream (size limit, timeout) pass unchanged so
		// the reply names them.
		return err
	}
	start := time.Now()
	_, err = d.sender.Send(ctx, env, f, n)
	if err != nil {
		code, class := "", "transient"
		var ge *graph.Error
		if errors.As(err, &ge) {
			code, class = ge.Code, ge.Class.String()
		} else if isPermanent(err) {
			class = "permanent"
		}
		// In direct mode the client retries, not graphrelay.
		d.Observer.DeliveryFailed(env.Mailbox.Address, code, class, false)
		return err
	}
	d.Observer.Delivered(env.Mailbox.Address, time.Since(start))
	return nil
}

// isPermanent reports errors that declare themselves permanent, such as a
// message that cannot be converted.
func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	var ic interface{ InvalidContent() bool }
	return (errors.As(err, &p) && p.Permanent()) || (errors.As(err, &ic) && ic.InvalidContent())
}

// stagingError is a local disk failure: temporary, and a full disk is
// reported as insufficient storage.
type stagingError struct{ err error }

func (e stagingError) Error() string   { return e.err.Error() }
func (e stagingError) Unwrap() error   { return e.err }
func (e stagingError) Temporary() bool { return true }
func (e stagingError) InsufficientStorage() bool {
	return errors.Is(e.err, syscall.ENOSPC) || errors.Is(e.err, syscall.EDQUOT)
}
func (e stagingError) Hint() string {
	return "graphrelay could not write its staging file; check free space and permissions of queue.dir, where direct mode stages messages (queue.dir/direct)"
}
