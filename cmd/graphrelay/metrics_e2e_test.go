package main

import (
	"bytes"
	"crypto/x509"
	"io"
	"net/http"
	"net/smtp"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// scrape returns the value of the sample whose line starts with series.
func scrape(t *testing.T, addr, series string) float64 {
	t.Helper()
	v, ok := scrapeSample(t, addr, series)
	if !ok {
		t.Errorf("no sample %s in /metrics", series)
		return -1
	}
	return v
}

// scrapeSample is scrape for a series that may not exist yet.
func scrapeSample(t *testing.T, addr, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v, true
}

func TestMetricsAndHealth(t *testing.T) {
	t.Parallel()
	cert := newAppCert(t, "graphrelay")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "alerts@company.com", "denied@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	r := startRelay(t, cfg, fake)
	fake.SetAccessPolicy([]string{"alerts@company.com"})
	admin := r.app.AdminAddr()

	msg := crlf("Subject: m\n\nbody\n")
	for i := 0; i < 2; i++ {
		if rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"ops@company.com"}, msg); rep.code != 250 {
			t.Fatalf("reply %d %s", rep.code, rep.msg)
		}
	}
	if rep := sendNetSMTP(t, r.addr, "denied@company.com", []string{"ops@company.com"}, crlf("From: denied@company.com\nSubject: m\n\nbody\n")); rep.code != 550 {
		t.Fatalf("access policy: reply %d %s", rep.code, rep.msg)
	}
	fake.FailGraph(graphtest.Fault{Status: 503})
	if rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"ops@company.com"}, msg); rep.code != 451 {
		t.Fatalf("503: reply %d %s", rep.code, rep.msg)
	}

	want := map[string]float64{
		`graphrelay_messages_received_total{listener="test"}`:                                                          4,
		`graphrelay_messages_accepted_total{listener="test"}`:                                                          2,
		`graphrelay_messages_rejected_total{code="550",enhanced="5.7.1",listener="test"}`:                              1,
		`graphrelay_messages_rejected_total{code="451",enhanced="4.4.1",listener="test"}`:                              1,
		`graphrelay_messages_delivered_total{mailbox="alerts@company.com"}`:                                            2,
		`graphrelay_delivery_failures_total{class="permanent",code="ErrorAccessDenied",mailbox="denied@company.com"}`:  1,
		`graphrelay_delivery_failures_total{class="transient",code="ServiceUnavailable",mailbox="alerts@company.com"}`: 1,
		`graphrelay_token_refreshes_total`:                                                                             1,
		`graphrelay_smtp_accept_seconds_count{listener="test"}`:                                                        2,
		`graphrelay_delivery_seconds_count{mailbox="alerts@company.com"}`:                                              2,
	}
	for series, v := range want {
		if got := scrape(t, admin, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	if exp := scrape(t, admin, "graphrelay_credential_expiry_timestamp_seconds"); exp < float64(time.Now().Unix()) {
		t.Errorf("credential expiry = %v, want the certificate's NotAfter", exp)
	}
	// Connections are released when clients leave.
	deadline := time.Now().Add(5 * time.Second)
	for scrape(t, admin, `graphrelay_smtp_connections_active{listener="test"}`) != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if v := scrape(t, admin, `graphrelay_smtp_connections_active{listener="test"}`); v != 0 {
		t.Errorf("active connections after the clients left = %v", v)
	}

	resp, err := http.Get("http://" + admin + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz: %v %v", resp, err)
	}
	var out, errOut bytes.Buffer
	if code := healthCmd([]string{"--url", "http://" + admin + "/readyz"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), `"ready":true`) {
		t.Errorf("health = %d: %s %s", code, out.String(), errOut.String())
	}
}

func TestReadyzFailsWithoutToken(t *testing.T) {
	t.Parallel()
	cert := newAppCert(t, "graphrelay")
	other := newAppCert(t, "not-registered")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "alerts@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = other.certFile, other.keyFile
	r := startRelay(t, cfg, fake)
	var out, errOut bytes.Buffer
	code := healthCmd([]string{"--url", "http://" + r.app.AdminAddr() + "/readyz"}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), `"ready":false`) || !strings.Contains(out.String(), "AADSTS700027") {
		t.Errorf("health with a refused certificate = %d: %s %s", code, out.String(), errOut.String())
	}
	if v := scrape(t, r.app.AdminAddr(), `graphrelay_token_failures_total{code="AADSTS700027"}`); v < 1 {
		t.Errorf("token failures = %v", v)
	}
}

// The series an admin alerts on, each after the traffic that moves it:
// MAIL and RCPT refusals by reason, a dead letter, a 429 and the time under
// its Retry-After floor, and the age of a message stuck in the queue.
func TestMetricsAlertSeries(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com", "denied@company.com", "stuck@company.com")
	cfg.Rules = []config.Rule{{Name: "staff", Sender: "*@company.com", Mailbox: config.MailboxSender,
		From: config.FromRewrite, Recipients: []string{"company.com"}, MaxRecipients: 2}}
	// The dead letter's notice would be one more delivery counted for the
	// notice's sending mailbox; the notice has its own test.
	cfg.Queue.NoticeTo = config.NoticeToNone
	fake.SetAccessPolicy([]string{"alerts@company.com", "stuck@company.com"})
	r := startRelay(t, cfg, fake)
	admin := r.app.AdminAddr()

	c, err := smtp.Dial(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("intruder@evil.test"); err == nil {
		t.Fatal("MAIL from a sender no rule allows was accepted")
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alerts@company.com"); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"ops@company.com", "a@gmail.test", "b@company.com", "c@company.com"} {
		_ = c.Rcpt(rcpt) // a@gmail.test: relay denied; c@: over max_recipients
	}
	_ = c.Quit()

	// 429 with Retry-After: 1, then delivered.
	fake.FailGraph(graphtest.Fault{Mailbox: "alerts@company.com", Status: 429, RetryAfter: "1"})
	if rep := sendNetSMTP(t, r.addr, "alerts@company.com", []string{"ops@company.com"}, crlf("Subject: m\n\nbody\n")); rep.code != 250 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}
	// Outside the access policy: permanent, dead-lettered.
	if rep := sendNetSMTP(t, r.addr, "denied@company.com", []string{"ops@company.com"}, crlf("Subject: m\n\nbody\n")); rep.code != 250 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}
	// Graph keeps failing for this one, so it waits in the queue.
	fake.SetGraphOutage(&graphtest.Fault{Mailbox: "stuck@company.com", Status: 503})
	if rep := sendNetSMTP(t, r.addr, "stuck@company.com", []string{"ops@company.com"}, crlf("Subject: m\n\nbody\n")); rep.code != 250 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}

	eventuallyMetric := func(series string, ok func(float64) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			v, found := scrapeSample(t, admin, series)
			if found && ok(v) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s = %v", series, v)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	eventuallyMetric(`graphrelay_messages_delivered_total{mailbox="alerts@company.com"}`, func(v float64) bool { return v == 1 })
	eventuallyMetric(`graphrelay_messages_dead_lettered_total{mailbox="denied@company.com",reason="permanent"}`, func(v float64) bool { return v == 1 })
	// Reported every few seconds while the message waits.
	eventuallyMetric(`graphrelay_queue_oldest_age_seconds{mailbox="stuck@company.com"}`, func(v float64) bool { return v > 0 })
	fake.SetGraphOutage(nil)

	for series, want := range map[string]float64{
		`graphrelay_smtp_command_refusals_total{code="550",command="MAIL",listener="test",reason="sender_denied"}`:       1,
		`graphrelay_smtp_command_refusals_total{code="550",command="RCPT",listener="test",reason="relay_denied"}`:        1,
		`graphrelay_smtp_command_refusals_total{code="452",command="RCPT",listener="test",reason="too_many_recipients"}`: 1,
		`graphrelay_graph_throttled_total{mailbox="alerts@company.com"}`:                                                 1,
	} {
		if got := scrape(t, admin, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// Retry-After: 1 put the mailbox under the floor for about a second.
	if v := scrape(t, admin, `graphrelay_graph_throttle_floor_seconds_total{mailbox="alerts@company.com"}`); v < 0.5 || v > 1.5 {
		t.Errorf("time under the Retry-After floor = %vs, want about 1", v)
	}
}
