package main

import (
	"bytes"
	"crypto/x509"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// scrape returns the value of the sample whose line starts with series.
func scrape(t *testing.T, addr, series string) float64 {
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
		t.Errorf("no sample %s in /metrics", series)
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func TestMetricsAndHealth(t *testing.T) {
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
