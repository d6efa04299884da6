package main

import (
	"time"
)

// StartResult is the cold start: exec to the listener accepting, and to
// the first 220 read.
type StartResult struct {
	Starts       int     `json:"starts"`
	MeanListenMs float64 `json:"mean_listen_ms"`
	MinListenMs  float64 `json:"min_listen_ms"`
	MaxListenMs  float64 `json:"max_listen_ms"`
	MeanGreetMs  float64 `json:"mean_greeting_ms"`
}

// coldStarts starts and stops the daemon n times on one spool. One start
// before them is not counted: it creates the spool and pages in the
// binary, which a restarted service finds already done.
func coldStarts(e *env, n int) (StartResult, error) {
	res := StartResult{Starts: n}
	dir, err := e.dir("coldstart")
	if err != nil {
		return res, err
	}
	var listen, greet time.Duration
	for i := -1; i < n; i++ {
		d, err := e.start(dir, e.instant)
		if err != nil {
			return res, err
		}
		e.stop(d)
		if i < 0 {
			continue
		}
		listen += d.Listening
		greet += d.Greeted
		if l := msOf(d.Listening); i == 0 || l < res.MinListenMs {
			res.MinListenMs = l
		}
		res.MaxListenMs = max(res.MaxListenMs, msOf(d.Listening))
	}
	res.MeanListenMs = msOf(listen / time.Duration(n))
	res.MeanGreetMs = msOf(greet / time.Duration(n))
	return res, nil
}
