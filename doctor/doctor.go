// Package doctor checks a graphrelay installation step by step, from the
// configuration file to the tenant, as "graphrelay check" reports it: each
// check is a small function returning a Result (OK, WARN or FAIL, with a
// one-line fix), and Run strings them together, skipping what an earlier
// failure makes meaningless. Nothing here sends mail unless a test
// recipient is given.
package doctor

import (
	"context"
	"net/http"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph"
)

// Status is a check's verdict.
type Status string

const (
	// OK: nothing to do.
	OK Status = "OK"
	// Warn: graphrelay works, but something will bite later (an expiring
	// certificate, a missing optional permission) or could not be checked.
	Warn Status = "WARN"
	// Fail: mail will not go out until this is fixed.
	Fail Status = "FAIL"
)

// Result is the outcome of one check. Fix is the admin's next step, set
// for WARN and FAIL.
type Result struct {
	Name   string `json:"step"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// Options says what to check and how.
type Options struct {
	// ConfigPath is the YAML file; "" means the built-in defaults.
	ConfigPath string
	// Environ is the GRAPHRELAY_* overlay, as for serve.
	Environ []string
	// HTTPClient talks to Entra and Graph. nil builds the production one
	// from graph.ca_file and graph.timeout; tests pass one that trusts
	// their fake.
	HTTPClient *http.Client
	// SendTest, when set, is the recipient of a real test message sent as
	// each mailbox (or only as SendFrom).
	SendTest string
	SendFrom string
	// Hostname names this machine in the test message; "" means
	// os.Hostname.
	Hostname string
	// Now is the clock for certificate expiry; nil means time.Now. The
	// clock-skew check always uses the real clock: that is what it checks.
	Now func() time.Time
	// Report, when set, is called with each result as soon as it is known,
	// so a slow network step does not hold back the lines before it.
	Report func(Result)
}

// runner collects the results of one Run.
type runner struct {
	opts    Options
	now     time.Time
	cfg     *config.Config
	results []Result
}

// Run performs every check and returns the results in order.
func Run(ctx context.Context, opts Options) []Result {
	r := &runner{opts: opts, now: time.Now()}
	if opts.Now != nil {
		r.now = opts.Now()
	}
	var res Result
	res, r.cfg = checkConfig(opts.ConfigPath, opts.Environ)
	r.add(res)
	if r.cfg == nil {
		return r.results
	}
	if res, exposed := checkSecretExposure(opts.ConfigPath); exposed {
		r.add(res)
	}
	if reason := r.cfg.DryRunReason(); reason != "" {
		r.add(Result{Name: "tenant", Status: Warn,
			Detail: "dry-run mode (" + reason + "): the credential, clock, token, permission and mailbox steps are skipped",
			Fix:    "set graph.tenant_id, graph.client_id and a credential to send for real (docs/tenant-setup.md)"})
		r.skipSendTest("dry-run mode sends nothing")
	} else {
		r.tenant(ctx)
	}
	if r.cfg.Queue.Backend == config.BackendJetStream {
		r.add(checkCluster(ctx, r.cfg))
	} else {
		r.add(checkSpool(r.cfg))
	}
	if r.cfg.DryRunReason() != "" {
		r.add(checkOutbox(r.cfg))
	}
	r.add(checkTLS(r.cfg, r.now))
	for _, l := range r.cfg.SMTP.Listeners {
		r.add(checkListener(l))
	}
	return r.results
}

func (r *runner) add(res Result) {
	r.results = append(r.results, res)
	if r.opts.Report != nil {
		r.opts.Report(res)
	}
}

// tenant runs the steps that talk to Entra and Graph, in the order an admin
// fixes them: a credential that loads, a clock Entra accepts, a token, the
// permissions in it, then each mailbox.
func (r *runner) tenant(ctx context.Context) {
	g := r.cfg.Graph
	cred := checkCredential(g, r.now)
	r.add(cred)

	cloud, err := graph.ResolveCloud(g)
	if err != nil {
		r.add(Result{Name: "token", Status: Fail, Detail: err.Error(), Fix: "check graph.cloud, graph.authority_url, graph.graph_url and graph.scope"})
		r.skipSendTest("there is no token")
		return
	}
	hc := r.opts.HTTPClient
	if hc == nil {
		if hc, err = graph.NewHTTPClient(g.CAFile, g.Timeout.D()); err != nil {
			r.add(Result{Name: "token", Status: Fail, Detail: err.Error(), Fix: "graph.ca_file must hold the PEM certificate of the TLS-inspecting proxy"})
			r.skipSendTest("there is no token")
			return
		}
	}
	r.add(checkClock(ctx, hc, cloud.LoginURL, g.TenantID))

	if cred.Status == Fail {
		r.add(Result{Name: "token", Status: Warn,
			Detail: "skipped: the credential did not load, so no token, permission or mailbox check is possible",
			Fix:    "fix the credential step first"})
		r.skipSendTest("there is no token")
		return
	}
	tokRes, creds, tok := checkToken(ctx, g, hc)
	r.add(tokRes)
	if tok == "" {
		r.add(Result{Name: "permissions", Status: Warn,
			Detail: "skipped: without a token the permissions and mailbox access cannot be checked",
			Fix:    "fix the token step first"})
		r.skipSendTest("there is no token")
		return
	}
	perm, mailSend := checkRoles(tok, r.cfg)
	r.add(perm)

	client := graph.NewClient(creds.Cloud.GraphURL, hc, creds.NewTokens, discardLog)
	appID := r.cfg.Graph.ClientID
	if claims, err := graph.ParseTokenClaims(tok); err == nil && claims.AppID != "" {
		appID = claims.AppID // a managed identity's, which the config does not name
	}
	if mailSend {
		for _, m := range r.cfg.Mailboxes {
			r.add(checkAccess(ctx, client, m, appID))
		}
	} else {
		r.add(Result{Name: "access", Status: Warn,
			Detail: "skipped: without Mail.Send Graph refuses every mailbox alike, so the access policy cannot be judged",
			Fix:    "fix the permissions step first"})
	}
	if r.opts.SendTest != "" {
		for _, res := range sendTests(ctx, client, r.cfg, r.opts) {
			r.add(res)
		}
	}
}

// skipSendTest reports a requested test message that could not be sent, so
// its absence is not mistaken for a delivery.
func (r *runner) skipSendTest(why string) {
	if r.opts.SendTest == "" {
		return
	}
	r.add(Result{Name: "send-test", Status: Warn, Detail: "skipped: " + why + "; no test message was sent",
		Fix: "fix the steps above, then run the check again with --send-test"})
}

// Failed reports whether any result is a FAIL.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == Fail {
			return true
		}
	}
	return false
}
