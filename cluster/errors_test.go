package cluster

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStoreErrorReplies: every failure to store is temporary (451), and
// JetStream's out-of-storage and limit errors are insufficient storage
// (452), so a client is never told to give up because a cluster is full.
func TestStoreErrorReplies(t *testing.T) {
	for _, tc := range []struct {
		err  error
		full bool
	}{
		{&jetstream.APIError{ErrorCode: 10047, Code: 503, Description: "insufficient storage resources available"}, true},
		{&jetstream.APIError{ErrorCode: 10023, Code: 503, Description: "insufficient resources"}, true},
		{&jetstream.APIError{ErrorCode: 10028, Code: 500, Description: "insufficient memory resources available"}, true},
		{fmt.Errorf("wrapped: %w", &jetstream.APIError{ErrorCode: 10053, Code: 500, Description: "maximum bytes exceeded"}), true},
		{nats.ErrTimeout, false},
		{jetstream.ErrNoStreamResponse, false},
		{errStopping, false},
		{errors.New("connection closed"), false},
	} {
		e := &StoreError{Op: "store the body", Err: tc.err}
		if !e.Temporary() || e.InsufficientStorage() != tc.full || e.Hint() == "" {
			t.Errorf("%v: temporary %v, insufficient storage %v (want %v)", tc.err, e.Temporary(), e.InsufficientStorage(), tc.full)
		}
	}
}
