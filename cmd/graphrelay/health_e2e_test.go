package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// In queue mode /readyz says whether mail can be accepted and stored, so
// a load balancer keeps sending mail while Entra is down (the spool exists
// to absorb that), and /graphz reports the upstream failure separately.
// The message sent meanwhile is accepted.
func TestReadyzInQueueModeWithEntraDown(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	r := startRelay(t, cfg, fake)
	fake.SetTokenOutage(503)
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get("http://" + r.app.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
		return resp.StatusCode, m
	}
	if code, m := get("/readyz"); code != 200 || m["ready"] != true {
		t.Errorf("/readyz with Entra down = %d %v; want ready", code, m)
	}
	code, m := get("/graphz")
	if code != 503 || m["healthy"] != false || !strings.Contains(toJSON(m), "graph token") {
		t.Errorf("/graphz with Entra down = %d %v; want 503 naming the token check", code, m)
	}
	mustQueue(t, r.addr, "alerts@company.com", "while Entra is down")
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
