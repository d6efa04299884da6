// Command rss measures the peak resident memory (VmHWM) of relaying one
// large message through the large-message path, against the fake Graph on
// loopback.
//
// The fake runs in this process and the relay in a child process, so the
// figure is the relay's alone (the fake keeps every uploaded byte). Two
// modes:
//
//	go run ./bench/rss                   # the daemon: graphrelay serve (direct mode), SMTP in, Graph out
//	go run ./bench/rss -delivery queue   # the same with the durable queue
//	go run ./bench/rss -mode relay       # only relay.Send over the spooled file
//
// -bin runs another graphrelay binary (for example one built from an older
// commit) in daemon mode; -defer sets relay.Options.DeferAttachmentBytes in
// relay mode (-1 decodes every attachment into memory, as before the
// deferral existed). Linux only: it reads /proc/<pid>/status.
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/graphrelay/graphrelay/bench/internal/benchkit"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

const mailbox = "scans@company.com"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		os.Exit(childMain(os.Args[2:]))
	}
	mode := flag.String("mode", "daemon", "daemon (graphrelay serve) or relay (relay.Send in a child process)")
	delivery := flag.String("delivery", "direct", "daemon mode: delivery.mode, direct or queue")
	bin := flag.String("bin", "", "graphrelay binary for daemon mode (default: go build ./cmd/graphrelay)")
	attachMB := flag.Float64("attachment-mb", 22, "size of the PDF-like attachment in MB (10^6 bytes); base64 makes the message about 4/3 of it")
	deferBytes := flag.Int64("defer", 0, "relay mode: relay.Options.DeferAttachmentBytes (0 default, -1 all in memory)")
	flag.Parse()
	if err := run(*mode, *delivery, *bin, int(*attachMB*1e6), *deferBytes); err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		os.Exit(1)
	}
}

func run(mode, delivery, bin string, attachBytes int, deferBytes int64) error {
	dir, err := os.MkdirTemp("", "graphrelay-rss-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	tenant, err := benchkit.StartTenant(dir, []string{mailbox}, 0)
	if err != nil {
		return err
	}
	defer tenant.Close()
	msgFile := filepath.Join(dir, "large.eml")
	attachment, size, err := benchkit.WriteLargeMessage(msgFile, attachBytes)
	if err != nil {
		return err
	}
	fmt.Printf("message: %d bytes (%.1f MB), attachment %d bytes, base64\n", size, float64(size)/1e6, len(attachment))

	var res result
	start := time.Now()
	switch mode {
	case "daemon":
		res, err = runDaemon(tenant, dir, msgFile, bin, delivery)
	case "relay":
		res, err = runRelayChild(tenant.Fake, tenant.CAFile(), msgFile, deferBytes)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Printf("mode %s (delivery %s): %s\n", mode, delivery, res.outcome)
	fmt.Printf("idle:  VmHWM %6.1f MB  VmRSS %6.1f MB\n", res.idle.HWMMiB(), res.idle.RSSMiB())
	fmt.Printf("after: VmHWM %6.1f MB  VmRSS %6.1f MB   (peak resident memory while relaying; MB = 2^20 bytes)\n", res.after.HWMMiB(), res.after.RSSMiB())
	if res.goStats != "" {
		fmt.Println(res.goStats)
	}
	fmt.Printf("elapsed %.1fs\n", elapsed.Seconds())
	return verify(tenant.Fake, attachment)
}

// verify checks that the fake received the attachment intact, when the
// message was delivered at all.
func verify(fake *graphtest.Server, attachment []byte) error {
	ds := fake.Deliveries()
	if len(ds) == 0 {
		fmt.Println("delivery: none")
		return nil
	}
	d := ds[0]
	want := sha256.Sum256(attachment)
	for _, a := range d.Message.Attachments {
		if sha256.Sum256(a.Content) == want {
			fmt.Printf("delivery: kind %s, attachment %q %d bytes, SHA-256 matches; %d upload PUTs\n",
				d.Kind, a.Name, len(a.Content), len(fake.UploadRequests()))
			return nil
		}
	}
	return fmt.Errorf("delivered (%s) but no attachment matches the one sent", d.Kind)
}
