package admin

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func serve(t *testing.T, pprof bool) string {
	t.Helper()
	s, err := Listen("127.0.0.1:0", prometheus.NewRegistry(), nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if pprof {
		s.EnablePprof()
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	return "http://" + s.Addr()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The profiler is served only when admin.pprof asks for it, and then the
// standard way: the index, and a CPU profile of the requested length.
func TestPprofIsOptIn(t *testing.T) {
	off := serve(t, false)
	if code, _ := get(t, off+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("without admin.pprof, /debug/pprof/ answers %d, want 404", code)
	}
	on := serve(t, true)
	if code, body := get(t, on+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d, %.80q", code, body)
	}
	if code, body := get(t, on+"/debug/pprof/profile?seconds=1"); code != http.StatusOK || len(body) == 0 {
		t.Errorf("/debug/pprof/profile = %d, %d bytes", code, len(body))
	}
	if code, _ := get(t, on+"/metrics"); code != http.StatusOK {
		t.Errorf("/metrics = %d with pprof on", code)
	}
}
