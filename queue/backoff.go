package queue

import (
	"math/rand/v2"
	"time"
)

// backoffCeiling is the longest wait after n failed attempts: initial,
// doubling per failure, capped at max. With the defaults (30s, 15m) that is
// 30s, 1m, 2m, 4m, 8m, then 15m until queue.max_age.
func backoffCeiling(n int, initial, max time.Duration) time.Duration {
	c := initial
	for i := 1; i < n && c < max; i++ {
		c *= 2
	}
	return min(c, max)
}

// fullJitter picks the actual wait uniformly in [0, ceiling]. Full jitter
// (rather than ±x%) spreads the retries of many messages that failed
// together, for example during a Graph outage, over the whole interval,
// so they do not return as one burst that is throttled again.
func fullJitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// backoff is the wait before the next attempt after n failed attempts.
func (q *Queue) backoff(n int) time.Duration {
	return fullJitter(backoffCeiling(n, q.opts.RetryInitial, q.opts.RetryMax))
}
