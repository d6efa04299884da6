package config

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// InlineSecretExposure reports a configuration file that holds a secret
// inline (graph.client_secret, graph.pfx_password) and that other local
// users can read: any of them can then take the app's identity. It returns
// "" when there is nothing to report, including on Windows, where the file
// mode does not describe who can read the file.
func InlineSecretExposure(path string) string {
	if path == "" || runtime.GOOS == "windows" {
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	// The file alone, without the environment or *_file settings: only a
	// secret written in it is exposed by its mode.
	cfg := Default()
	if decodeStrict(data, cfg) != nil {
		return ""
	}
	var inline []string
	if cfg.Graph.ClientSecret != "" {
		inline = append(inline, "graph.client_secret")
	}
	if cfg.Graph.PFXPassword != "" {
		inline = append(inline, "graph.pfx_password")
	}
	if len(inline) == 0 {
		return ""
	}
	return fmt.Sprintf("%s is readable by every local user (mode %04o) and holds %s inline: anyone on this machine can send mail as the app; "+
		"move it to %s_file (mode 0640, group graphrelay), or chmod o-r %s",
		path, fi.Mode().Perm(), strings.Join(inline, " and "), strings.Join(inline, "_file and "), path)
}
