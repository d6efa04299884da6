// Package cluster is the queue backend for several relays: it stores
// accepted messages in a replicated NATS JetStream cluster and delivers
// them from every relay under one cluster-wide budget per mailbox.
//
// # Accept
//
// Deliver stores the message's record (the local queue's Record) in the
// key-value bucket GRAPHRELAY_RECORDS, with the body inside it when the
// body has at most 64 KiB, and otherwise after the body in the object
// store bucket GRAPHRELAY_BODIES (in 128 KiB chunks, so a 35 MB message is
// stored whole although NATS' default payload limit is 1 MB); then it
// stores a work item in the work-queue stream GRAPHRELAY_QUEUE. Every write waits
// for JetStream's acknowledgement, which a replicated stream gives only
// after a quorum of its replicas (2 of 3 at R3) has stored it; only then
// does smtpd answer 250. A write that fails answers 451 4.3.0, a cluster
// that is out of storage 452 4.3.1, and what was written is removed.
//
// # Deliver
//
// Every mailbox has its own subject (graphrelay.queue.<hash of the
// address>) and a durable pull consumer on it that all relays share, so a
// message is handed to one relay at a time. Before a relay sends, it takes
// one of the mailbox's max_concurrency lease keys in GRAPHRELAY_LEASES
// (created atomically; the bucket's TTL is queue.jetstream.lease), renews
// it while the request runs, and afterwards keeps it briefly for its own
// next request to the mailbox or deletes it (gate.go). A relay that dies
// keeps its lease until the TTL passes, and its message returns to the
// consumer after the same lease (AckWait), so its share of the budget and
// its mail are never stranded for longer than one lease. The Retry-After
// floor and the pacing of messages_per_minute are shared through
// GRAPHRELAY_MAILBOXES, which every relay watches.
//
// Outcomes are settled by the local queue's code: queue.Classify decides
// permanent or transient, and queue.Fate decides what becomes of the
// message (delivered, deferred, interrupted, expired or dead; which
// notice; the metrics and the log line) while streamHolder only carries
// it out (settle.go): transient failures wait the backoff (or
// Retry-After) through a delayed negative acknowledgement, and dead
// letters keep their record (with Dead set) and body until "graphrelay
// queue delete" or "requeue".
//
// # At least once
//
// Each attempt is written into the record before the request leaves. A
// message redelivered while its last attempt is still "started" was held
// by a relay that died or lost the cluster during the request: the attempt
// is marked interrupted and ambiguous, and logged as "attempt was
// interrupted ... possible duplicate" with its client-request-id. After
// Graph's 202 the record is removed before the work item is acknowledged,
// so a crash in between ends in a redelivery that finds no record and
// sends nothing.
package cluster
