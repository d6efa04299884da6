// Package e2e holds the cluster's end-to-end tests, and no code: they
// build the graphrelay binary, start a 3-node NATS JetStream cluster
// (cluster/natstest) and the fake tenant (graph/graphtest), run several
// relay processes in cluster mode against them, and check what a user
// sees: every accepted message delivered through kill -9s of relays and
// of a NATS server, the mailbox budget shared across relays, a 30 MB
// message, the queue commands, and migration from a local spool. The
// throughput benchmark of one relay against three lives here too.
//
// They are in a package of their own, apart from cmd/graphrelay's tests,
// so that they run beside those (go test runs packages in parallel) and
// each package keeps go test's per-package timeout to itself.
package e2e
