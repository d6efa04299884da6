package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Permissions are the subjects a relay's NATS user must be allowed to
// publish to; it must be allowed to subscribe to "_INBOX.>" for replies.
// docs/deploy.md lists them, and a test runs the relays as a user with
// exactly these rights.
var Permissions = []string{
	"$JS.API.>", "$JS.ACK." + streamQueue + ".>", "$JS.FC.>",
	"$KV." + bucketRecords + ".>", "$KV." + bucketLeases + ".>", "$KV." + bucketBoxes + ".>",
	"$O." + bucketBodies + ".>", subjectPrefix + ">",
}

// ErrNotCreated means the cluster is reachable and usable, but no relay
// has created graphrelay's stream yet; the first relay to start does.
var ErrNotCreated = errors.New("graphrelay's stream does not exist yet")

// Check connects as a relay would and checks what a relay needs: the
// connection and credentials, JetStream for the account, the stream's
// replication against the configuration and a quorum of its replicas,
// and permission to read and write graphrelay's buckets (a probe key is
// written and removed). It returns a one-line summary.
func Check(ctx context.Context, o Options) (string, error) {
	o = o.withDefaults()
	nc, err := connect(o)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	acct, err := js.AccountInfo(ctx)
	if err != nil {
		return "", fmt.Errorf("JetStream is not available to this account on %s: %w", nc.ConnectedUrlRedacted(), err)
	}
	summary := fmt.Sprintf("connected to %s (server %s)", nc.ConnectedUrlRedacted(), nc.ConnectedServerName())
	stream, err := js.Stream(ctx, streamQueue)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return summary + fmt.Sprintf("; JetStream storage used %d bytes", acct.Store), ErrNotCreated
	}
	if err != nil {
		return summary, fmt.Errorf("stream %s: %w (are the credentials allowed $JS.API.>?)", streamQueue, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return summary, fmt.Errorf("stream %s: %w", streamQueue, err)
	}
	if err := replicationOK(info, o.Replicas); err != nil {
		return summary, err
	}
	leader := "single server"
	if info.Cluster != nil && info.Cluster.Leader != "" {
		leader = "leader " + info.Cluster.Leader
	}
	summary += fmt.Sprintf("; stream %s R%d, %s, %d work items", streamQueue, info.Config.Replicas, leader, info.State.Msgs)
	leases, err := js.KeyValue(ctx, bucketLeases)
	if err != nil {
		return summary, fmt.Errorf("bucket %s: %w", bucketLeases, err)
	}
	probe := "check." + nuid.Next()
	rev, err := leases.Create(ctx, probe, []byte("graphrelay check"))
	if err != nil {
		return summary, fmt.Errorf("cannot write to bucket %s (permissions for $KV.%s.>?): %w", bucketLeases, bucketLeases, err)
	}
	if err := leases.Purge(ctx, probe, jetstream.LastRevision(rev)); err != nil {
		return summary, fmt.Errorf("cannot delete from bucket %s: %w", bucketLeases, err)
	}
	if _, err := js.KeyValue(ctx, bucketRecords); err != nil {
		return summary, fmt.Errorf("bucket %s: %w", bucketRecords, err)
	}
	return summary + "; read and write permitted", nil
}
