package main

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"github.com/graphrelay/graphrelay/bench/internal/benchkit"
)

// runDaemon starts graphrelay serve against the fake in delivery mode
// (direct or queue), sends the message over SMTP, waits for the delivery,
// and reads the daemon's memory before and after.
func runDaemon(tenant *benchkit.Tenant, dir, msgFile, bin, delivery string) (result, error) {
	if bin == "" {
		var err error
		if bin, err = benchkit.Build(dir); err != nil {
			return result{}, err
		}
	}
	d, err := benchkit.Start(benchkit.Options{Bin: bin, Dir: dir, Tenant: tenant, Delivery: delivery})
	if err != nil {
		return result{}, err
	}
	defer d.Stop()
	var res result
	if res.idle, err = d.Memory(); err != nil {
		return result{}, err
	}
	res.outcome = outcome(benchkit.SendFile(d.Addr, "scanner@mfp.lan", []string{"alice@company.com"}, msgFile, 5*time.Minute))
	if delivery == "queue" && strings.HasPrefix(res.outcome, "SMTP 250") {
		// The 250 came after spooling; the worker sends afterwards.
		if len(tenant.Fake.WaitDeliveries(1, 5*time.Minute)) == 0 {
			res.outcome += "; no delivery within 5 minutes"
		} else {
			res.outcome = "SMTP 250 (spooled), then delivered by the queue worker"
		}
	}
	if res.after, err = d.Memory(); err != nil {
		return result{}, err
	}
	if !strings.HasPrefix(res.outcome, "SMTP 250") {
		res.outcome += "\n" + d.LogTail(8)
	}
	return res, nil
}

// outcome describes the final reply, or the failure before it.
func outcome(r benchkit.Reply, err error) string {
	var te *textproto.Error
	switch {
	case err == nil:
		return "SMTP 250"
	case errors.As(err, &te):
		return fmt.Sprintf("SMTP %d %s", te.Code, te.Msg)
	default:
		return err.Error()
	}
}
