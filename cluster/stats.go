package cluster

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// statsInterval is how often a relay reports the cluster's queue depth.
const statsInterval = 5 * time.Second

// statsLoop reports each mailbox's messages in the cluster (waiting,
// deferred and in flight on any relay) and the age of its oldest work
// item, so every relay's metrics show the cluster's queue.
func (c *Cluster) statsLoop() {
	defer c.wg.Done()
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-c.fetchCtx.Done():
			return
		case <-t.C:
		}
		if tick%60 == 0 {
			// A delivered message's record leaves a purge marker; drop
			// the ones older than 30 minutes (nats.go's default).
			ctx, cancel := context.WithTimeout(c.fetchCtx, time.Minute)
			if err := c.st.records.PurgeDeletes(ctx); err != nil && c.fetchCtx.Err() == nil {
				c.log.Debug("cannot purge old record markers", "err", err)
			}
			cancel()
		}
		c.mu.Lock()
		boxes := make([]*box, 0, len(c.boxes))
		for _, b := range c.boxes {
			boxes = append(boxes, b)
		}
		c.mu.Unlock()
		for _, b := range boxes {
			ctx, cancel := context.WithTimeout(c.fetchCtx, 2*time.Second)
			info, err := b.cons.Info(ctx)
			if err == nil {
				depth := int(info.NumPending) + info.NumAckPending
				var oldest time.Duration
				if depth > 0 {
					if m, err := c.st.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subjectPrefix+b.token)); err == nil {
						oldest = time.Since(m.Time)
					}
				}
				c.opts.Observer.QueueStats(b.address, depth, oldest)
			}
			cancel()
		}
	}
}
