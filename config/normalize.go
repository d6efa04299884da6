package config

import (
	"net/url"
	"path/filepath"
	"strings"
)

// graphAPIVersions are the version segments of Graph's API paths. graphrelay
// adds /v1.0 itself, so a graph_url copied from Graph Explorer
// (https://graph.microsoft.com/v1.0) would double it and every request would
// fail as a bad request.
var graphAPIVersions = []string{"v1.0", "beta"}

// normalize rewrites values that have one obvious meaning into the form the
// rest of graphrelay expects. Load calls it before Validate, which refuses
// what is left unnormalised in a Config built in code.
func normalize(cfg *Config) {
	cfg.Graph.GraphURL = graphBaseURL(cfg.Graph.GraphURL)
}

// graphBaseURL trims a trailing slash and a trailing API version segment
// from a Graph URL.
func graphBaseURL(raw string) string {
	s := strings.TrimRight(strings.TrimSpace(raw), "/")
	if _, version := graphURLVersion(s); version != "" {
		s = strings.TrimRight(s[:len(s)-len(version)], "/")
	}
	return s
}

// graphURLVersion returns the parsed URL and the API version segment its
// path ends in, if any.
func graphURLVersion(raw string) (*url.URL, string) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, ""
	}
	last := u.Path[strings.LastIndex(u.Path, "/")+1:]
	for _, v := range graphAPIVersions {
		if strings.EqualFold(last, v) {
			return u, last
		}
	}
	return u, ""
}

// DirectStagingDir is where direct mode keeps each message while it is
// being sent: under queue.dir, which every deployment makes writable for
// the spool, rather than the temporary directory, which the shipped
// container and Kubernetes manifests mount read-only.
func (c *Config) DirectStagingDir() string {
	return filepath.Join(c.Queue.Dir, "direct")
}
