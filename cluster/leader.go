package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Key-value and object store reads in nats.go are "direct gets", which any
// replica may answer, including one that is behind (a server that was
// just restarted and is catching up). For a record or a body that decides
// whether a message exists, a stale "not found" would make a relay drop
// mail it accepted, so those reads go through the stream's leader, which
// has every write JetStream acknowledged.

var errNoMsg = errors.New("no message")

// leaderGet returns the last message on subject in stream, read through
// the stream leader ($JS.API.STREAM.MSG.GET).
func (s *store) leaderGet(ctx context.Context, stream, subject string) (data, hdr []byte, seq uint64, err error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": subject})
	msg, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, nil, 0, err
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, nil, 0, fmt.Errorf("read %s from %s: %w", subject, stream, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound) {
			return nil, nil, 0, errNoMsg
		}
		return nil, nil, 0, fmt.Errorf("read %s from %s: %s (%d)", subject, stream, resp.Error.Description, resp.Error.ErrCode)
	}
	if resp.Message == nil {
		return nil, nil, 0, errNoMsg
	}
	return resp.Message.Data, resp.Message.Hdrs, resp.Message.Seq, nil
}

// getRecord reads a message's record through the leader; a deleted or
// purged record is jetstream.ErrKeyNotFound.
func (s *store) getRecord(ctx context.Context, id string) (*stored, error) {
	data, hdr, seq, err := s.leaderGet(ctx, "KV_"+bucketRecords, "$KV."+bucketRecords+"."+id)
	if errors.Is(err, errNoMsg) || (err == nil && (bytes.Contains(hdr, []byte("KV-Operation: DEL")) || bytes.Contains(hdr, []byte("KV-Operation: PURGE")))) {
		return nil, jetstream.ErrKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	rec := &stored{rev: seq}
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("parse record %s: %w", id, err)
	}
	return rec, nil
}

// bodyInfo reads a body's object metadata through the leader.
func (s *store) bodyInfo(ctx context.Context, id string) (*jetstream.ObjectInfo, error) {
	subject := "$O." + bucketBodies + ".M." + base64.URLEncoding.EncodeToString([]byte(id))
	data, _, _, err := s.leaderGet(ctx, "OBJ_"+bucketBodies, subject)
	if errors.Is(err, errNoMsg) {
		return nil, jetstream.ErrObjectNotFound
	}
	if err != nil {
		return nil, err
	}
	var info jetstream.ObjectInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("parse object info %s: %w", id, err)
	}
	if info.Deleted {
		return nil, jetstream.ErrObjectNotFound
	}
	return &info, nil
}
