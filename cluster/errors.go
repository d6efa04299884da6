package cluster

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// StoreError is a failure to store a message in the cluster before 250.
// It is temporary, like the local spool's SpoolError: smtpd answers 452
// 4.3.1 when the cluster is out of storage and 451 4.3.0 otherwise.
type StoreError struct {
	Op  string
	Err error
}

func (e *StoreError) Error() string { return fmt.Sprintf("cluster store: %s: %v", e.Op, e.Err) }
func (e *StoreError) Unwrap() error { return e.Err }

// Temporary reports that the client should try again later.
func (e *StoreError) Temporary() bool { return true }

// InsufficientStorage reports that JetStream refused for lack of storage
// or because a stream limit is reached.
func (e *StoreError) InsufficientStorage() bool {
	var api *jetstream.APIError
	if errors.As(e.Err, &api) {
		switch api.ErrorCode {
		case 10023, 10028, 10047, 10053: // insufficient resources, memory, storage; stream limits
			return true
		}
	}
	return false
}

// Hint is the admin's next step, for the log line.
func (e *StoreError) Hint() string {
	if e.InsufficientStorage() {
		return "the NATS cluster is out of storage for the graphrelay streams: free disk on the NATS servers, raise their jetstream max_file_store, or look at why mail is not leaving (graphrelay queue list)"
	}
	if errors.Is(e.Err, errStopping) {
		return "the relay is shutting down; the client will retry"
	}
	return "the NATS cluster did not confirm storing the message with the configured replicas: check that a quorum of NATS servers is up (graphrelay check) and the relay's connection to them"
}

var errStopping = errors.New("the relay is shutting down")
