package main

import (
	"slices"
	"time"
)

// Dist summarises a latency distribution in milliseconds.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// distOf sorts ds in place and takes nearest-rank percentiles, so that
// p99 of 100 samples is the 99th and not an interpolation.
func distOf(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	slices.Sort(ds)
	return Dist{N: len(ds), P50: msOf(rank(ds, 50)), P99: msOf(rank(ds, 99)), Max: msOf(ds[len(ds)-1])}
}

func rank(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
