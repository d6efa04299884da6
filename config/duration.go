package config

import "time"

// parseDuration is time.ParseDuration plus a "d" suffix for days, because
// retry horizons such as "give up after 2d" are naturally written in days.
func parseDuration(s string) (time.Duration, error) {
	if n := len(s); n > 1 && s[n-1] == 'd' {
		d, err := time.ParseDuration(s[:n-1] + "h")
		return d * 24, err
	}
	return time.ParseDuration(s)
}
