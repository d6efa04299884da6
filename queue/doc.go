// Package queue takes responsibility for accepted messages, in one of two
// modes chosen by delivery.mode.
//
// # Queue mode (store and forward)
//
// Queue is the smtpd.Deliverer. Deliver writes the envelope and the
// message into one file and returns nil only once it is durable: written
// under a temporary name, fsynced, renamed to queue/<id>.msg, and queue/
// fsynced. Before the message is scheduled, the preflight (Admitter)
// reads it back and refuses what Graph would refuse for certain: too large
// for its path and format, or empty; the message is removed again and
// smtpd answers 552 5.3.4 or 554 5.6.0. Only then does smtpd answer "250
// 2.0.0 queued as <id>". Every other failure before that answers 4xx and
// leaves nothing behind: the spool quota (queue.max_messages,
// queue.max_bytes), a full disk (ENOSPC, EDQUOT) answer 452 4.3.1 through
// SpoolError.InsufficientStorage; any other disk error answers 451.
// FORMAT.md describes the spool for admins.
//
// Delivery starts at once: Deliver hands the message to the scheduler,
// which starts the attempt before the client has read its 250 when the
// mailbox has room. Attempts are bounded globally (queue.workers; by
// default the sum of the mailboxes' max_concurrency, at least 16, see
// DefaultWorkers) and per mailbox by its gate (gate.go, the same in direct
// mode): mailboxes[].max_concurrency requests in flight (4 by default,
// Graph's per-app, per-mailbox limit), pacing (messages_per_minute)
// measured when a request leaves, and the Retry-After floor. An attempt
// starts only with a slot of its gate, taken by the scheduler, so each
// mailbox waits in its own line without holding a worker, and the
// scheduler takes one message per mailbox in turn: a throttled mailbox
// never holds workers that another mailbox could use. Without pacing, up
// to max_concurrency more attempts per mailbox are prepared ahead (record
// read, journal line fsynced) while its requests are out, with workers no
// free slot of any mailbox may want (every mailbox's free slots are kept
// in reserve, so a busy mailbox's prepared attempts never keep another
// mailbox from Graph); each waits in the gate for a request to end, so a slot
// that frees is used at once rather than after a journal fsync (the
// fsync was about 40% of the time a slot was held). A Retry-After floor
// raised meanwhile sends them back to their line.
//
// Each attempt is recorded in the journal (fsynced, group-committed with
// the other attempts starting at the same moment) before the request goes
// out, together with a pessimistic next try, so that a crash leaves an
// honest attempt count and a restart does not retry at once what may have
// just crashed the daemon. Outcomes:
//
//   - 202: the message is removed.
//   - Permanent (graph.Error.Permanent, or a message the converter
//     refuses): the message becomes a dead letter at once.
//   - Transient (429, 5xx, timeouts, network and token failures, and any
//     error nobody classified): retried after exponential backoff with full
//     jitter, uniform in [0, min(retry_max, retry_initial·2ⁿ⁻¹)] after n
//     failures. A Retry-After from Graph, fractional seconds included and
//     capped at retry_max (and at an hour), is a floor for the whole
//     mailbox: no request for that mailbox leaves before it elapses, and the
//     message itself waits at least that long. The floor is recorded in
//     floors.json before another attempt can start, so it holds across a
//     restart or a crash.
//   - Still failing queue.max_age after it was received (or requeued): a
//     dead letter, with reason "expired". The last attempt is made at the
//     deadline itself; when the mailbox's floor or pacing holds the message
//     back past its deadline, the scheduler gives it up at the deadline
//     without another attempt.
//
// outcome.go's classify is the one place that decides between these, for
// both modes; Graph's own reading of its answer (graph.Error.Class) is
// kept, and an unknown Graph 4xx is permanent there.
//
// Dead letters move to failed/, their .msg file and then their .json
// record, with every attempt's HTTP status, Graph error code, request-id,
// client-request-id and hint in the record; graphrelay_messages_dead_lettered_total
// counts them. A notice goes through Graph, sent as queue.notice_mailbox,
// to queue.notice_to's addresses and, by default ("mailbox"), to the mailbox
// the message was to be sent as, which is where Exchange puts its own
// non-delivery reports, so a dead letter reaches a human with no setting
// ("none" turns notices off): a multipart/mixed message naming the
// original's subject, sender and recipients, the reason and the hint, with
// the original attached as message/rfc822 (only its header when it is over
// 2 MiB). A notice is itself a spooled message, marked in its record and
// with an X-Graphrelay-Notice header and the null sender <>; no notice is
// ever sent about a notice, nor about a message whose sender was <>. With
// queue.delay_notice_after, one "delayed" notice is sent when a message has
// waited that long.
//
// # Layers: the backend and the seam
//
// The package has two layers, and a second backend (a NATS JetStream
// cluster, say) replaces only the first:
//
//   - The backend stores, loads and acknowledges spooled messages: store
//     a message durably before 250 (Spool.create, which takes the quota),
//     open its bytes for an attempt (Spool.openMessage), record an
//     attempt before its request leaves (the journal) and its outcome
//     after (Spool.writeState), acknowledge it (Spool.remove after a
//     delivery, Spool.move to failed/ for a dead letter), and, at start,
//     settle what a crash left and list what waits (Spool.settle). The
//     local spool (spool.go, msgfile.go, journal.go, settle.go) is the
//     default backend.
//   - The delivery seam, the same for every backend and for direct mode:
//     the preflight before 250 (Admitter), the per-mailbox gate
//     (mailbox.go: requests in flight, pacing measured when the request
//     leaves, the Retry-After floor), the scheduler (scheduler.go), the
//     one outcome of an attempt (outcome.go: delivered, transient with a
//     capped retry time, permanent, interrupted; ambiguous; the hint),
//     and what becomes of the message (fate.go: Fate decides delivered,
//     deferred with its next try, interrupted, expired or dead, which
//     notice is queued, what is counted and logged), with the notices'
//     text (notice.go).
//
// The seam never reads or writes spool files itself; it asks the backend
// through Holder (fate.go), which the local spool (spoolholder.go) and
// the cluster (package cluster, settle.go) implement: remove, store the
// record and wait, store a dead letter, queue a notice. A backend never
// decides whether to retry; it stores what the seam decided.
//
// # At least once
//
// Graph's sendMail has no idempotency key. A request that timed out, or
// got a 5xx or lost its connection after it was sent (a reset, an HTTP/2
// stream error, an EOF), or was in flight when the
// daemon was killed, may have sent the mail; graphrelay cannot know, so it
// retries, and the recipient may get the message twice. graphrelay
// therefore delivers at least once, and duplicates are limited to those
// cases. Each is logged as "possible duplicate" (or, after a crash,
// "attempt was interrupted") with the message's queue id and, when a
// request went out, its client-request-id, which Graph's support can trace;
// the attempt is marked "ambiguous" in the message's record. The removal of a
// delivered message is not fsynced, so a power loss right after a delivery
// can also repeat it.
//
// # Shutdown and restart
//
// The daemon opens the queue only after every listener is bound, so a
// start that fails touches no message. At a stop, StopDispatch comes first
// (no new attempt starts, Deliver still spools for the sessions finishing
// a transaction); Close, after smtpd has stopped, lets the attempts in
// flight finish until the shutdown deadline; then it cancels them, records
// them as interrupted with next try "now", and releases the spool. At the
// next start every message in queue/ resumes at its next try, after the
// repairs described in settle.go. Open returns as soon as the spool is
// locked and new mail can be written, so the listeners open at once; the
// waiting messages are read in the background after Start, each scheduled
// as it is read. An entry that cannot be read, or whose message is not as
// long as its envelope line says, is moved to damaged/ and counted instead
// of being delivered or skipped unseen (damaged.go).
//
// # Performance
//
// Creating a file is the dearest filesystem operation by far (on the
// reference VM 0.5 to 0.8 ms of CPU, against 30 µs for a rename), so a
// healthy message costs one write(2) of its envelope line and message
// through one buffer (a message larger than the 64 KB buffer, one per
// 64 KB), one fsync, one rename in, one journal line, and one rename into
// spare/ once delivered: files are reused through spare/ (kept stocked in
// the background, so that a growing queue does not create files between
// a message's last byte and its 250; a recycled file is overwritten by
// the next message, through the handle it was written with, which the
// daemon keeps open so that reusing it costs no open(2) and close(2)
// (held.go), and emptied only if it waits a second unused), records
// are written only when an attempt fails, and every
// directory and journal fsync is group-committed across concurrent
// messages. A small message sent at once is not read back from its file
// for its first attempt: the bytes just written are kept in memory until
// then (fresh.go). FORMAT.md weighs this against a group-committed log.
//
// # Operating the queue while the daemon runs
//
// The daemon holds an exclusive flock on <queue.dir>/lock for its whole
// life, and is the only process that changes queue/ and failed/ while it
// runs. The admin commands (Admin: "graphrelay queue list|show|failed")
// read records without a lock: every file is replaced by rename, so a
// reader sees a whole old or new record. Changes ("retry", "delete",
// "requeue") are requests: the command writes ctl/<rid>.req (by rename),
// the daemon carries it out within queue's control interval and answers
// in ctl/<rid>.res. When no daemon holds the lock, the command takes it
// and makes the change itself, with the same code. A message being
// delivered when "delete" arrives is removed when that attempt ends.
//
// # Direct mode
//
// Direct relays each message synchronously: the client gets 250 only after
// Graph's 202 and keeps the retry duty otherwise; nothing is spooled. It
// runs the same preflight and passes the same per-mailbox gate as queue
// mode: a session waits up to DefaultDirectWait for its mailbox, then gets
// 451 4.4.5 with the seconds to wait, so Graph never sees more requests for
// a mailbox than max_concurrency, nor one before its Retry-After. The
// reply comes from the same outcome (classify) as queue mode's. It
// suits stateless deployments (a container without a persistent volume, a
// sidecar per application) whose senders retry 4xx replies properly, such
// as Postfix or an application's mail library. Queue mode suits devices
// that send once and give up on a 4xx: printers, scanners, NAS units,
// UPSes, cron. Queue mode needs a persistent queue.dir on a local
// filesystem with working fsync and flock.
package queue
