package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"
)

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
