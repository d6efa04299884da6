package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/graphrelay/graphrelay/doctor"
)

// checkHTTPClient replaces the Entra and Graph client built from the
// configuration. Only tests set it, to trust their fake's CA.
var checkHTTPClient *http.Client

// checkCmd runs the doctor. It exits 1 when any step fails, so scripts and
// configuration management can gate on it, and 2 on bad usage.
func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("GRAPHRELAY_CONFIG"), "YAML configuration `file` (default: built-in dry-run defaults)")
	asJSON := fs.Bool("json", false, "print the results as a JSON array of {step, status, detail, fix}")
	sendTo := fs.String("send-test", "", "send a real test message to `address` as each mailbox (the definitive test)")
	sendFrom := fs.String("from", "", "with --send-test, send only as this `mailbox`")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: graphrelay check [--config FILE] [--json] [--send-test RCPT [--from MAILBOX]]

Checks the configuration, the app credential, the clock, the token and its
permissions, each mailbox's access (without sending anything), the spool,
the TLS certificate and the listeners. Each step prints OK, WARN or FAIL
with a one-line fix; the exit status is 1 if any step fails.

Run it as the user graphrelay runs as: file and port checks depend on it.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "graphrelay check: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *sendTo != "" {
		if a, err := mail.ParseAddress(*sendTo); err != nil || a.Name != "" {
			fmt.Fprintf(stderr, "graphrelay check: --send-test %q is not a plain email address\n", *sendTo)
			return 2
		}
	}
	if *sendFrom != "" && *sendTo == "" {
		fmt.Fprintln(stderr, "graphrelay check: --from needs --send-test")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts := doctor.Options{
		ConfigPath: *cfgPath,
		Environ:    os.Environ(),
		HTTPClient: checkHTTPClient,
		SendTest:   *sendTo,
		SendFrom:   *sendFrom,
	}
	if !*asJSON {
		opts.Report = func(r doctor.Result) { printResult(stdout, r) }
	}
	results := doctor.Run(ctx, opts)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			fmt.Fprintf(stderr, "graphrelay check: %v\n", err)
			return 1
		}
	}
	if doctor.Failed(results) {
		return 1
	}
	return 0
}

// printResult writes "STATUS  name  detail", further detail lines indented
// under the detail, and the fix for WARN and FAIL.
func printResult(w io.Writer, r doctor.Result) {
	lines := strings.Split(r.Detail, "\n")
	fmt.Fprintf(w, "%-4s  %s  %s\n", r.Status, r.Name, lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(w, "        %s\n", l)
	}
	if r.Status != doctor.OK && r.Fix != "" {
		// A fix may end in commands to run, one a line.
		fix := strings.Split(r.Fix, "\n")
		fmt.Fprintf(w, "      fix: %s\n", fix[0])
		for _, l := range fix[1:] {
			fmt.Fprintf(w, "      %s\n", l)
		}
	}
}
