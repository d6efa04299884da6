package doctor

import (
	"context"
	"errors"
	"os"

	"github.com/graphrelay/graphrelay/cluster"
	"github.com/graphrelay/graphrelay/config"
)

// checkCluster checks the NATS JetStream cluster that queue.backend
// jetstream stores mail in: connection, replication and permissions.
func checkCluster(ctx context.Context, cfg *config.Config) Result {
	j := cfg.Queue.JetStream
	name, _ := os.Hostname()
	detail, err := cluster.Check(ctx, cluster.Options{URLs: j.URLs, CredsFile: j.CredsFile, NKeyFile: j.NKeyFile,
		CAFile: j.CAFile, CertFile: j.CertFile, KeyFile: j.KeyFile, Replicas: j.Replicas, Lease: j.Lease.D(), Name: name + " check"})
	switch {
	case errors.Is(err, cluster.ErrNotCreated):
		return Result{Name: "cluster", Status: Warn, Detail: detail + "; graphrelay's stream is not created yet",
			Fix: "start one relay: it creates the stream and buckets with queue.jetstream.replicas"}
	case err != nil:
		return Result{Name: "cluster", Status: Fail, Detail: err.Error(),
			Fix: "check queue.jetstream.urls, the credentials (creds_file or nkey_file, with permission for $JS.API.> and $KV.GRAPHRELAY_*), and that a quorum of NATS servers is up"}
	case j.Replicas < 3:
		return Result{Name: "cluster", Status: Warn, Detail: detail,
			Fix: "queue.jetstream.replicas is below 3: the loss of one NATS server can lose accepted mail; use 3 on a 3-node cluster"}
	}
	return Result{Name: "cluster", Status: OK, Detail: detail}
}
