// Package e2etest holds the helpers shared by the end-to-end tests that
// drive a real graphrelay (in process, or the built binary) over SMTP
// against the fake tenant of graph/graphtest: the fake's client secret,
// a raw SMTP client that shows the queue id, the test messages, and
// waiting on listeners, conditions and logs.
package e2etest

import (
	"testing"

	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// Secret is the client secret the fake from NewFake accepts.
const Secret = "queue-test-secret~value"

// NewFake starts a fake tenant that accepts Secret.
func NewFake(t testing.TB, cfg graphtest.Config) *graphtest.Server {
	cfg.Secrets = append(cfg.Secrets, graphtest.Secret{Value: Secret})
	return graphtest.New(t, cfg)
}
