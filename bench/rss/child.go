package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"time"

	"golang.org/x/oauth2"

	"github.com/graphrelay/graphrelay/bench/internal/benchkit"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/graph/relay"
)

// tokenEnv passes the access token the parent minted to the child, so the
// child needs no credential of its own.
const tokenEnv = "GRAPHRELAY_RSS_TOKEN"

// childReport is what the child prints on stdout.
type childReport struct {
	Outcome     string
	Idle, After [2]int64 // VmRSS, VmHWM in KiB
	GoStats     string
}

// runRelayChild runs relay.Send on the message file in a child process.
func runRelayChild(fake *graphtest.Server, caFile, msgFile string, deferBytes int64) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.Command(self, "child", "-graph-url", fake.GraphURL(), "-ca", caFile, "-message", msgFile,
		"-defer", fmt.Sprint(deferBytes))
	cmd.Env = append(os.Environ(), tokenEnv+"="+fake.MintAccessToken([]string{"Mail.Send", "Mail.ReadWrite"}, time.Hour))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("child: %w", err)
	}
	var rep childReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return result{}, fmt.Errorf("child report %q: %w", out.String(), err)
	}
	return result{outcome: rep.Outcome, idle: benchkit.Memory{RSS: rep.Idle[0], HWM: rep.Idle[1]}, after: benchkit.Memory{RSS: rep.After[0], HWM: rep.After[1]},
		goStats: rep.GoStats}, nil
}

func childMain(args []string) int {
	fs := flag.NewFlagSet("child", flag.ExitOnError)
	graphURL := fs.String("graph-url", "", "")
	caFile := fs.String("ca", "", "")
	msgFile := fs.String("message", "", "")
	deferBytes := fs.Int64("defer", 0, "")
	fs.Parse(args)
	rep, err := relayOnce(*graphURL, *caFile, *msgFile, *deferBytes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(rep)
	return 0
}

func relayOnce(graphURL, caFile, msgFile string, deferBytes int64) (childReport, error) {
	var rep childReport
	hc, err := graph.NewHTTPClient(caFile, 120*time.Second)
	if err != nil {
		return rep, err
	}
	tok := &oauth2.Token{AccessToken: os.Getenv(tokenEnv), TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client := graph.NewClient(graphURL, hc, func() oauth2.TokenSource { return oauth2.StaticTokenSource(tok) }, log)
	r := relay.New(client, true, log, relay.Options{DeferAttachmentBytes: deferBytes})

	f, err := os.Open(msgFile)
	if err != nil {
		return rep, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return rep, err
	}
	idle, err := benchkit.ReadMemory(os.Getpid())
	if err != nil {
		return rep, err
	}
	env := &envelope.Envelope{ID: envelope.NewID(), From: "scanner@mfp.lan", Recipients: []string{"alice@company.com"},
		Mailbox: envelope.Mailbox{Address: mailbox}, Format: envelope.FormatJSON}
	_, err = r.Send(context.Background(), env, f, st.Size())
	after, merr := benchkit.ReadMemory(os.Getpid())
	if merr != nil {
		return rep, merr
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.Outcome = "relay.Send returned nil"
	if err != nil {
		rep.Outcome = "relay.Send: " + err.Error()
	}
	rep.Idle, rep.After = [2]int64{idle.RSS, idle.HWM}, [2]int64{after.RSS, after.HWM}
	rep.GoStats = fmt.Sprintf("Go runtime: TotalAlloc %.1f MB, Sys %.1f MB, HeapSys %.1f MB, %d GCs (DeferAttachmentBytes %d)",
		float64(ms.TotalAlloc)/(1<<20), float64(ms.Sys)/(1<<20), float64(ms.HeapSys)/(1<<20), ms.NumGC, deferBytes)
	return rep, nil
}
