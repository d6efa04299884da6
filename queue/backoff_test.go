package queue

import (
	"testing"
	"time"
)

func TestBackoffCeiling(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute}, {4, 4 * time.Minute},
		{5, 8 * time.Minute}, {6, 15 * time.Minute}, {7, 15 * time.Minute}, {100, 15 * time.Minute},
	} {
		if got := backoffCeiling(tc.n, 30*time.Second, 15*time.Minute); got != tc.want {
			t.Errorf("after %d failures: ceiling %s, want %s", tc.n, got, tc.want)
		}
	}
}

func TestFullJitterSpansTheInterval(t *testing.T) {
	const ceiling = time.Second
	var lo, hi int
	for range 2000 {
		d := fullJitter(ceiling)
		if d < 0 || d > ceiling {
			t.Fatalf("jitter %s outside [0, %s]", d, ceiling)
		}
		if d < ceiling/4 {
			lo++
		}
		if d > 3*ceiling/4 {
			hi++
		}
	}
	// Uniform: about 500 in each quarter; 300 is far outside chance.
	if lo < 300 || hi < 300 {
		t.Errorf("jitter not spread over the interval: %d in the lowest quarter, %d in the highest", lo, hi)
	}
	if fullJitter(0) != 0 {
		t.Error("no ceiling must mean no wait")
	}
}
