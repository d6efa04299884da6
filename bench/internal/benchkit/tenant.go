package benchkit

import (
	"os"
	"path/filepath"
	"time"

	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// secret is the client secret the fake registers and the daemon presents.
const secret = "bench~secret"

// Tenant is the fake Entra ID and Graph on loopback, in this process, with
// the files a daemon needs to reach it: the fake's CA (graph.ca_file) and
// the client secret (graph.client_secret_file).
type Tenant struct {
	Fake       *graphtest.Server
	Mailboxes  []string
	Latency    time.Duration
	caFile     string
	secretFile string
}

// StartTenant starts the fake with the given mailboxes and added Graph
// latency, and writes its files under dir. The app gets Mail.ReadWrite as
// well as Mail.Send, which the large-message upload path needs.
func StartTenant(dir string, mailboxes []string, latency time.Duration) (*Tenant, error) {
	mbs := make([]graphtest.Mailbox, len(mailboxes))
	for i, m := range mailboxes {
		mbs[i] = graphtest.Mailbox{Address: m}
	}
	fake, err := graphtest.Start(graphtest.Config{
		Roles:     []string{"Mail.Send", "Mail.ReadWrite"},
		Secrets:   []graphtest.Secret{{Value: secret}},
		Mailboxes: mbs,
		Latency:   latency,
	})
	if err != nil {
		return nil, err
	}
	t := &Tenant{Fake: fake, Mailboxes: mailboxes, Latency: latency,
		caFile: filepath.Join(dir, "fake-ca.pem"), secretFile: filepath.Join(dir, "client-secret")}
	if err := os.WriteFile(t.caFile, fake.CAPEM(), 0o644); err != nil {
		fake.Close()
		return nil, err
	}
	if err := os.WriteFile(t.secretFile, []byte(secret+"\n"), 0o600); err != nil {
		fake.Close()
		return nil, err
	}
	return t, nil
}

// Close stops the fake.
func (t *Tenant) Close() { t.Fake.Close() }

// CAFile is the path of the fake's CA certificate (PEM).
func (t *Tenant) CAFile() string { return t.caFile }
