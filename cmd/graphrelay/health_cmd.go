package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/graphrelay/graphrelay/config"
)

// healthCmd asks the running daemon's admin endpoint whether it is ready,
// for container and service health checks. It exits 0 when ready and 1
// otherwise.
func healthCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("GRAPHRELAY_CONFIG"), "configuration `file`, to find admin.listen")
	url := fs.String("url", "", "readiness URL (default: http://<admin.listen>/readyz)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	target := *url
	// hint says where the address came from when the daemon does not
	// answer, because the usual cause is asking the wrong one.
	hint := ""
	if target == "" {
		addr := "127.0.0.1:8025"
		switch cfg, err := config.Load(*cfgPath, os.Environ()); {
		case *cfgPath == "":
			hint = "; no --config or GRAPHRELAY_CONFIG was given, so this is the default admin.listen: pass --config FILE (or set GRAPHRELAY_CONFIG) to use your configuration's, or --url"
		case err != nil:
			fmt.Fprintf(stderr, "graphrelay health: %v\n", err)
			return 2
		case cfg.Admin.Listen == "":
			fmt.Fprintf(stderr, "graphrelay health: %s disables the admin endpoint (admin.listen is empty); set admin.listen to use health checks\n", *cfgPath)
			return 2
		default:
			addr = cfg.Admin.Listen
		}
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		target = "http://" + addr + "/readyz"
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay health: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay health: not reachable: %v%s\n", err, hint)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s", body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "graphrelay health: not ready (HTTP %d)\n", resp.StatusCode)
		return 1
	}
	return 0
}
