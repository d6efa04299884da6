package queue

import "time"

// Observer receives the delivery side's events for metrics. Every method
// must be cheap and safe for concurrent use.
type Observer interface {
	// Delivered is a message Graph accepted, sinceAccepted after its 250.
	Delivered(mailbox string, sinceAccepted time.Duration)
	// DeliveryFailed is one failed attempt; retry says whether another
	// attempt is scheduled.
	DeliveryFailed(mailbox, code, class string, retry bool)
	// DeadLettered is a message given up and moved to failed/; reason is
	// "permanent" or "expired".
	DeadLettered(mailbox, reason string)
	// QueueStats reports one mailbox's waiting messages and the oldest age.
	QueueStats(mailbox string, depth int, oldest time.Duration)
	// Damaged reports how many entries are quarantined in damaged/.
	Damaged(entries int)
	// Throttled is an attempt Graph answered with 429 (throttled) or with
	// a Retry-After; floorAdded is how much later the mailbox's Retry-After
	// floor now ends, so the sum is the time the mailbox spent under it.
	Throttled(mailbox string, throttled bool, floorAdded time.Duration)
}

type nopObserver struct{}

func (nopObserver) Delivered(string, time.Duration)             {}
func (nopObserver) DeliveryFailed(string, string, string, bool) {}
func (nopObserver) QueueStats(string, int, time.Duration)       {}
func (nopObserver) Damaged(int)                                 {}
func (nopObserver) DeadLettered(string, string)                 {}
func (nopObserver) Throttled(string, bool, time.Duration)       {}
