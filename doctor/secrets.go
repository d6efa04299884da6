package doctor

import "github.com/graphrelay/graphrelay/config"

// checkSecretExposure warns when the configuration file holds a secret
// inline and other local users can read it.
func checkSecretExposure(path string) (Result, bool) {
	w := config.InlineSecretExposure(path)
	if w == "" {
		return Result{}, false
	}
	return Result{Name: "secrets", Status: Warn, Detail: w,
		Fix: "keep secrets in *_file settings readable only by graphrelay's group, or make the configuration file unreadable to other users"}, true
}
