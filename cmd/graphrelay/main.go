// Command graphrelay relays SMTP mail through Microsoft Graph. main only
// parses the subcommand and wires the packages together.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	// Installed as /usr/sbin/sendmail (a symlink), the binary is the
	// sendmail that cron, PHP and mail(1) call, with sendmail's arguments.
	switch filepath.Base(os.Args[0]) {
	case "sendmail", "sendmail.exe":
		os.Exit(sendmailCmd(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serveCmd(args[1:], stderr)
	case "health":
		return healthCmd(args[1:], stdout, stderr)
	case "queue":
		return queueCmd(args[1:], stdout, stderr)
	case "passwd":
		return passwdCmd(args[1:], os.Stdin, stdout, stderr)
	case "keygen":
		return keygenCmd(args[1:], os.Stdin, stdout, stderr)
	case "check":
		return checkCmd(args[1:], stdout, stderr)
	case "sendmail":
		return sendmailCmd(args[1:], os.Stdin, stdout, stderr)
	case "service":
		return serviceCmd(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "graphrelay", versionString())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "graphrelay: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: graphrelay <command> [flags]

Commands:
  serve     run the SMTP relay (dry-run when no tenant is configured)
  queue     list, show, retry, delete and requeue spooled messages
  passwd    hash an SMTP AUTH password for the users list
  keygen    create the app registration's certificate and key
  check     check the configuration, the tenant setup and each mailbox
  sendmail  submit a message from stdin to the local relay, as sendmail -t -i does
  service   install, uninstall, start or stop the Windows service
  health    exit 0 when the running daemon reports ready (for health checks)
  version   print the version

Run "graphrelay serve -h" for the serve flags.
`)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

// parseFlags parses args into fs. done reports that the command should exit
// now with code: 0 after -h or --help (the usage was asked for and
// printed), 2 after a bad flag. Every subcommand parses through it, so
// --help exits 0 everywhere.
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return 0, true
	}
	return 2, true
}
