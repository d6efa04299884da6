package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/queue"
)

const queueUsage = `Usage: graphrelay queue <command> [flags]

Commands (all safe while the daemon runs):
  list [--json]          waiting messages: id, age, mailbox, recipients, attempts, next try, last error
  show ID [--json]       one message: envelope, every attempt, and its header
  retry ID | --all       schedule delivery now
  delete ID              remove a message from the queue or from failed/
  failed [--json]        dead letters, with the reason and the hint
  requeue ID             move a dead letter back to the queue once its cause is fixed
  damaged [--json]       entries that could not be read and were moved to damaged/, and why
  migrate --dir SPOOL    move a stopped host's spool into the cluster (queue.backend: jetstream)

Flags:
  --config FILE          configuration file that names queue.dir (default $GRAPHRELAY_CONFIG)
  --dir DIR              the spool directory itself, instead of --config
`

// queueCmd runs "graphrelay queue ...". It reads the spool directly and
// sends changes to the running daemon (or makes them under the spool lock
// when none runs); see queue/control.go.
func queueCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, queueUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	if sub == "migrate" {
		return migrateCmd(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("queue "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, queueUsage) }
	cfgPath := fs.String("config", os.Getenv("GRAPHRELAY_CONFIG"), "configuration `file` naming queue.dir")
	dir := fs.String("dir", "", "spool `directory` (instead of --config)")
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "retry: every waiting message")
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	wantArgs := map[string]int{"list": 0, "failed": 0, "damaged": 0, "show": 1, "retry": 1, "delete": 1, "requeue": 1}
	n, known := wantArgs[sub]
	if !known {
		fmt.Fprintf(stderr, "graphrelay queue: unknown command %q\n\n%s", sub, queueUsage)
		return 2
	}
	if sub == "retry" && *all {
		n = 0
	}
	if len(pos) != n {
		fmt.Fprintf(stderr, "graphrelay queue %s: expected %d argument(s), got %d\n\n%s", sub, n, len(pos), queueUsage)
		return 2
	}
	spoolDir := *dir
	var cfg *config.Config
	if spoolDir == "" {
		if cfg, err = config.Load(*cfgPath, os.Environ()); err != nil {
			fmt.Fprintf(stderr, "graphrelay queue: %v\n(use --dir to name the spool directory directly)\n", err)
			return 2
		}
		spoolDir = cfg.Queue.Dir
	}
	cluster := cfg != nil && cfg.Queue.Backend == config.BackendJetStream
	if !cluster && (sub == "retry" || sub == "delete" || sub == "requeue") {
		if owner := foreignSpoolOwner(spoolDir); owner != "" {
			fmt.Fprintln(stderr, refuseAsRoot(sub, spoolDir, owner, args[1:]))
			return 1
		}
	}
	admin, closeAdmin, err := openQueueAdmin(cfg, spoolDir, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay queue: %v\n", err)
		return 1
	}
	defer closeAdmin()
	switch sub {
	case "list":
		recs, problems := admin.List()
		printProblems(stderr, problems)
		return printList(stdout, recs, *asJSON)
	case "failed":
		recs, problems := admin.Failed()
		printProblems(stderr, problems)
		return printFailed(stdout, recs, *asJSON)
	case "damaged":
		entries, err := admin.Damaged()
		if err != nil {
			fmt.Fprintf(stderr, "graphrelay queue damaged: %v\n", err)
			return 1
		}
		return printDamaged(stdout, entries, *asJSON)
	case "show":
		m, err := admin.Show(pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "graphrelay queue show: %v\n", err)
			return 1
		}
		return printShow(stdout, m, *asJSON)
	}
	req := queue.Request{Op: sub, All: *all}
	if len(pos) > 0 {
		req.ID = pos[0]
	}
	resp, err := admin.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay queue %s: %v\n", sub, err)
		return 1
	}
	if !resp.OK {
		fmt.Fprintf(stderr, "graphrelay queue %s: %s\n", sub, resp.Message)
		return 1
	}
	fmt.Fprintln(stdout, resp.Message)
	return 0
}

// parseInterspersed lets flags follow the positional arguments, as in
// "queue show ID --json"; the flag package stops at the first non-flag.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func printProblems(w io.Writer, problems []error) {
	for _, p := range problems {
		fmt.Fprintf(w, "warning: %v\n", p)
	}
}

// listEntry is one line of "queue list --json" and "queue failed --json".
type listEntry struct {
	ID         string    `json:"id"`
	ReceivedAt time.Time `json:"received_at"`
	AgeSeconds float64   `json:"age_seconds"`
	Mailbox    string    `json:"mailbox"`
	From       string    `json:"from"`
	Recipients []string  `json:"recipients"`
	Size       int64     `json:"size"`
	Attempts   int       `json:"attempts"`
	NextTry    time.Time `json:"next_try,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	Notice     string    `json:"notice,omitempty"`
	// Dead letters only.
	FailedAt time.Time `json:"failed_at,omitzero"`
	Reason   string    `json:"reason,omitempty"`
	Hint     string    `json:"hint,omitempty"`
}

func entryOf(r *queue.Record, now time.Time) listEntry {
	e := listEntry{
		ID: r.Envelope.ID, ReceivedAt: r.Envelope.ReceivedAt, AgeSeconds: now.Sub(r.Envelope.ReceivedAt).Seconds(),
		Mailbox: r.Envelope.Mailbox.Address, From: r.Envelope.From, Recipients: r.Envelope.Recipients,
		Size: r.Envelope.Size, Attempts: len(r.Attempts), NextTry: r.NextTry, LastError: r.LastError(), Notice: r.Notice,
	}
	if r.Dead != nil {
		e.NextTry = time.Time{}
		e.FailedAt, e.Reason, e.Hint = r.Dead.At, r.Dead.Reason, r.Dead.Hint
	}
	return e
}

func printList(w io.Writer, recs []*queue.Record, asJSON bool) int {
	now := time.Now()
	if asJSON {
		return printJSONEntries(w, recs, now)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAGE\tMAILBOX\tRECIPIENTS\tATTEMPTS\tNEXT TRY\tLAST ERROR")
	for _, r := range recs {
		e := entryOf(r, now)
		next := "now"
		if d := e.NextTry.Sub(now); d > 0 {
			next = "in " + roundDur(d)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, roundDur(now.Sub(e.ReceivedAt)), e.Mailbox,
			clip(strings.Join(e.Recipients, ","), 40), e.Attempts, next, clip(e.LastError, 70))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d message(s) waiting\n", len(recs))
	return 0
}

func printFailed(w io.Writer, recs []*queue.Record, asJSON bool) int {
	now := time.Now()
	if asJSON {
		return printJSONEntries(w, recs, now)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAGE\tMAILBOX\tRECIPIENTS\tATTEMPTS\tREASON\tERROR")
	for _, r := range recs {
		e := entryOf(r, now)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, roundDur(now.Sub(e.ReceivedAt)), e.Mailbox,
			clip(strings.Join(e.Recipients, ","), 40), e.Attempts, e.Reason, clip(e.LastError, 70))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d dead letter(s); \"graphrelay queue show ID\" prints the hint, \"requeue ID\" sends one again\n", len(recs))
	return 0
}

func printDamaged(w io.Writer, entries []queue.DamagedEntry, asJSON bool) int {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(entries); err != nil {
			return 1
		}
		return 0
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tMOVED\tWHAT\tPROBLEM\tFILES")
	for _, e := range entries {
		what := "message (not delivered)"
		if e.RecordOnly {
			what = "record only (message delivered)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.ID, e.Moved.Format(time.DateTime), what, clip(e.Problem, 70), strings.Join(e.Files, " "))
	}
	tw.Flush()
	noun := "entries"
	if len(entries) == 1 {
		noun = "entry"
	}
	fmt.Fprintf(w, "%d damaged %s. Fix a message's file (permissions, a restore from backup) and, with the daemon stopped, move it back into queue/; or delete it. A record alone can be deleted.\n", len(entries), noun)
	return 0
}

func printJSONEntries(w io.Writer, recs []*queue.Record, now time.Time) int {
	out := make([]listEntry, 0, len(recs))
	for _, r := range recs {
		out = append(out, entryOf(r, now))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return 1
	}
	return 0
}

func printShow(w io.Writer, m *queue.Message, asJSON bool) int {
	r := m.Record
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Area   string        `json:"area"`
			Path   string        `json:"path"`
			Record *queue.Record `json:"record"`
			Header string        `json:"header"`
		}{m.Area, m.Path, r, string(m.Header)}); err != nil {
			return 1
		}
		return 0
	}
	e := &r.Envelope
	state := "waiting"
	if m.Area == "failed" {
		state = "dead letter"
	}
	fmt.Fprintf(w, "Queue id:    %s (%s, %s)\n", e.ID, state, m.Path)
	fmt.Fprintf(w, "Received:    %s from %s (helo %s, tls %v) on listener %s\n", e.ReceivedAt.Format(time.RFC3339), e.ClientIP, e.Helo, e.TLS, e.Listener)
	if e.AuthUser != "" {
		fmt.Fprintf(w, "Auth user:   %s\n", e.AuthUser)
	}
	fmt.Fprintf(w, "Sender:      <%s>\n", e.From)
	fmt.Fprintf(w, "Recipients:  %s\n", strings.Join(e.Recipients, ", "))
	fmt.Fprintf(w, "Mailbox:     %s\n", mailboxString(e.Mailbox.Address, e.Mailbox.ID))
	fmt.Fprintf(w, "Format:      %s, %d bytes\n", e.Format, e.Size)
	if r.Notice != "" {
		fmt.Fprintf(w, "Notice:      %s notice about %s\n", r.Notice, r.NoticeFor)
	}
	if m.Area != "failed" {
		fmt.Fprintf(w, "Next try:    %s\n", r.NextTry.Format(time.RFC3339))
	}
	if d := r.Dead; d != nil {
		fmt.Fprintf(w, "Failed:      %s (%s)\n", d.At.Format(time.RFC3339), d.Reason)
		fmt.Fprintf(w, "Error:       %s\n", d.Error)
		if d.RequestID != "" {
			fmt.Fprintf(w, "Request-id:  %s\n", d.RequestID)
		}
		if d.Hint != "" {
			fmt.Fprintf(w, "Hint:        %s\n", d.Hint)
		}
		if d.NoticeID != "" {
			fmt.Fprintf(w, "Notice:      sent as %s\n", d.NoticeID)
		}
		if !r.RequeuedAt.IsZero() {
			fmt.Fprintf(w, "Requeued:    %s\n", r.RequeuedAt.Format(time.RFC3339))
		}
	}
	fmt.Fprintf(w, "\nAttempts (%d):\n", len(r.Attempts))
	for _, a := range r.Attempts {
		fmt.Fprintf(w, "  #%d %s %s", a.N, a.Start.Format(time.RFC3339), a.Outcome)
		if a.Status != 0 {
			fmt.Fprintf(w, " HTTP %d", a.Status)
		}
		if a.Code != "" {
			fmt.Fprintf(w, " %s", a.Code)
		}
		if a.RequestID != "" {
			fmt.Fprintf(w, " request-id=%s", a.RequestID)
		}
		if a.ClientRequestID != "" {
			fmt.Fprintf(w, " client-request-id=%s", a.ClientRequestID)
		}
		if a.RetryAfter > 0 {
			fmt.Fprintf(w, " retry-after=%gs", a.RetryAfter)
		}
		if a.Ambiguous {
			fmt.Fprint(w, " (ambiguous: Graph may have accepted it)")
		}
		fmt.Fprintln(w)
		if a.Error != "" {
			fmt.Fprintf(w, "      error: %s\n", a.Error)
		}
		if a.Hint != "" {
			fmt.Fprintf(w, "      hint:  %s\n", a.Hint)
		}
	}
	fmt.Fprintf(w, "\nHeader:\n%s", strings.ReplaceAll(string(m.Header), "\r\n", "\n"))
	return 0
}

func mailboxString(addr, id string) string {
	if id != "" {
		return addr + " (" + id + ")"
	}
	return addr
}

func roundDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
