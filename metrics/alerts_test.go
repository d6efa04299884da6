package metrics

import (
	"os"
	"regexp"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Every series the example alert rules use must be one graphrelay exports,
// so a renamed metric cannot leave an alert that never fires.
func TestAlertRulesUseExportedSeries(t *testing.T) {
	m := New()
	// One event of each kind, so every labelled series has a sample.
	m.ConnectionOpened("l")
	m.ConnectionRefused("l", 554)
	m.AuthFailed("l", true)
	m.MessageAnswered("l", 250, "2.0.0", 1, time.Millisecond)
	m.MessageAnswered("l", 550, "5.7.1", 1, time.Millisecond)
	m.CommandRefused("l", "RCPT", 550, "relay_denied")
	m.Delivered("mb", time.Second)
	m.DeliveryFailed("mb", "x", "transient", true)
	m.QueueStats("mb", 1, time.Second)
	m.TokenFetched("")
	m.TokenFetched("AADSTS700027")
	m.SetCredentialExpiry(time.Now())
	m.DeadLettered("mb", "permanent")
	m.Throttled("mb", true, time.Second)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}

	data, err := os.ReadFile("../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`graphrelay_[a-z_]+`)
	n := 0
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			for _, name := range names.FindAllString(r.Expr, -1) {
				n++
				if !exported[name] {
					t.Errorf("alert %s uses %s, which graphrelay does not export", r.Alert, name)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no graphrelay series found in the alert rules")
	}
}
