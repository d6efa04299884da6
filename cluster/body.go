package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"
)

// inlineMax is the largest body kept inside the message's record instead
// of the object store. Most relayed mail (alerts, cron output, short
// scans) is this small, and inline it costs no object-store writes,
// reads or deletes: about half of the cluster's replicated operations
// per message. Larger bodies go to the object store in full chunks; the
// record, with an inline body encoded, stays far below NATS' default
// 1 MB payload limit.
const inlineMax = 64 << 10

// putBody stores a message body: a body of at most inlineMax bytes is
// returned for the record to carry (inline is then non-nil, possibly
// empty), a larger one is stored in the object store under id. On an
// error nothing stays stored.
func (s *store) putBody(ctx context.Context, id string, r io.Reader) (inline []byte, size int64, err error) {
	head := make([]byte, inlineMax+1)
	n, err := io.ReadFull(r, head)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return head[:n], int64(n), nil
	case err != nil:
		return nil, 0, err
	}
	info, err := s.bodies.Put(ctx, jetstream.ObjectMeta{Name: id}, fullReader{io.MultiReader(bytes.NewReader(head), r)})
	if err != nil {
		s.removeBody(context.Background(), id)
		return nil, 0, err
	}
	return nil, int64(info.Size), nil
}

// setBody makes inline the record's body; nil leaves it in the object
// store.
func (rec *stored) setBody(inline []byte) {
	if inline != nil {
		rec.Inline, rec.Body = true, inline
	}
}

// readBody writes a message body from the object store to w one chunk at
// a time and checks its digest. The object store's own Get pushes every
// chunk at once into the subscription's buffer, which for a 35 MB message
// would hold it all in memory; reading by sequence keeps one chunk.
func (s *store) readBody(ctx context.Context, id string, w io.Writer) error {
	// Through the leader, like records: a lagging replica's "not found"
	// would make a dead letter of a message that has its body.
	info, err := s.bodyInfo(ctx, id)
	if err != nil {
		return err
	}
	subject := "$O." + bucketBodies + ".C." + info.NUID
	h := sha256.New()
	var seq uint64 = 1
	var size uint64
	for range info.Chunks {
		m, err := s.bodyStream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			return fmt.Errorf("read a chunk of the body: %w", err)
		}
		if _, err := w.Write(m.Data); err != nil {
			return err
		}
		h.Write(m.Data)
		size += uint64(len(m.Data))
		seq = m.Sequence + 1
	}
	if sum := "SHA-256=" + base64.URLEncoding.EncodeToString(h.Sum(nil)); size != info.Size || sum != info.Digest {
		return fmt.Errorf("the body read back from the object store does not match its digest (%d of %d bytes)", size, info.Size)
	}
	return nil
}

// removeBody deletes a body: its chunks, and then the object's metadata
// entry, which the object store would otherwise keep as a deletion marker
// for every message ever delivered.
func (s *store) removeBody(ctx context.Context, id string) error {
	if err := s.bodies.Delete(ctx, id); err != nil && !isNotFound(err) {
		return err
	}
	meta := "$O." + bucketBodies + ".M." + base64.URLEncoding.EncodeToString([]byte(id))
	return s.bodyStream.Purge(ctx, jetstream.WithPurgeSubject(meta))
}

// dropBody removes the object-store body of a record that has one.
func (s *store) dropBody(ctx context.Context, rec *stored) error {
	if rec.Inline {
		return nil
	}
	return s.removeBody(ctx, rec.Envelope.ID)
}
