package smtpd

import (
	"sync"
	"time"
)

// rateLimiter enforces per-rule messages-per-minute limits with a sliding
// one-minute window. The number of rules is fixed by the configuration,
// so its memory is bounded.
type rateLimiter struct {
	now func() time.Time
	mu  sync.Mutex
	win map[int][]time.Time
}

func newRateLimiter(now func() time.Time) *rateLimiter {
	return &rateLimiter{now: now, win: map[int][]time.Time{}}
}

// allow records one message for rule and reports whether it is within
// perMinute; perMinute 0 means unlimited.
func (r *rateLimiter) allow(rule, perMinute int) bool {
	if perMinute <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	cut := now.Add(-time.Minute)
	w := r.win[rule]
	i := 0
	for i < len(w) && !w[i].After(cut) {
		i++
	}
	w = w[i:]
	if len(w) >= perMinute {
		r.win[rule] = w
		return false
	}
	r.win[rule] = append(w, now)
	return true
}
