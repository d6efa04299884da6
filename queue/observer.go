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
}

type nopObserver struct{}

func (nopObserver) Delivered(string, time.Duration)             {}
func (nopObserver) DeliveryFailed(string, string, string, bool) {}
func (nopObserver) QueueStats(string, int, time.Duration)       {}
func (nopObserver) Damaged(int)                                 {}
func (nopObserver) DeadLettered(string, string)                 {}
