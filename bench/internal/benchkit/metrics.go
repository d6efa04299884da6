package benchkit

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Histogram is a Prometheus histogram's cumulative counts by upper bound
// (le), summed over label sets.
type Histogram map[float64]float64

// Histogram scrapes the daemon's /metrics for the histogram name. The
// daemon's own view of a latency excludes the benchmark process's
// scheduling delays, which on a busy 2-core machine can dominate what the
// clients measure.
func (d *Daemon) Histogram(name string) (Histogram, error) {
	if d.AdminAddr == "" {
		return nil, fmt.Errorf("%s: this server has no /metrics", name)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + d.AdminAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	h := Histogram{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := name + "_bucket{"
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		_, rest, ok := strings.Cut(line, `le="`)
		if !ok {
			continue
		}
		le, rest, ok := strings.Cut(rest, `"`)
		if !ok {
			continue
		}
		bound := math.Inf(1)
		if le != "+Inf" {
			if bound, err = strconv.ParseFloat(le, 64); err != nil {
				return nil, fmt.Errorf("%s: %w", line, err)
			}
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", line, err)
		}
		h[bound] += n
	}
	return h, sc.Err()
}

// Share returns the fraction of the observations made between before and
// h that were at most bound, which must be one of the histogram's bucket
// bounds; ok is false when there were none.
func (h Histogram) Share(before Histogram, bound float64) (share float64, ok bool) {
	total := h[math.Inf(1)] - before[math.Inf(1)]
	within, known := h[bound]
	if total <= 0 || !known {
		return 0, false
	}
	return (within - before[bound]) / total, true
}
