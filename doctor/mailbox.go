package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
)

// TestSubject is the subject of the --send-test message.
const TestSubject = "graphrelay check test message"

// checkAccess mirrors Test-ApplicationAccessPolicy for one mailbox with a
// probe that cannot deliver mail; graph.Client.ProbeAccess explains why.
// appID is the application the token is for, for the PowerShell that
// grants a denied mailbox.
func checkAccess(ctx context.Context, c *graph.Client, m config.Mailbox, appID string) Result {
	res := Result{Name: "access " + m.Address}
	mb := envelope.Mailbox{Address: m.Address, ID: m.ID}
	via := ""
	if m.ID != "" {
		via = " (as object id " + m.ID + ")"
	}
	p := c.ProbeAccess(ctx, mb.PathID())
	switch p.Access {
	case graph.AccessGranted:
		if p.Accepted {
			res.Status = Warn
			res.Detail = "granted" + via + ", but Graph accepted the recipient-less probe instead of refusing it: nothing was delivered (there is no recipient), yet the probe can no longer tell a denied mailbox from a granted one"
			res.Fix = "use graphrelay check --send-test RCPT for a definitive answer, and Test-ApplicationAccessPolicy in Exchange Online PowerShell"
			return res
		}
		res.Status = OK
		res.Detail = "granted" + via + ": Graph authorised the mailbox, then refused the probe for having no recipients (" + p.Err.Code + "), as intended"
	case graph.AccessDenied:
		res.Status, res.Fix = Fail, p.Err.Hint()+grantPowerShell(m.Address, appID)
		res.Detail = "denied" + via + ": " + describe(p.Err)
	case graph.AccessNoMailbox:
		res.Status, res.Fix = Fail, p.Err.Hint()
		res.Detail = "unknown mailbox" + via + ": " + describe(p.Err)
	default:
		res.Status = Warn
		res.Detail = "could not tell" + via + ": " + describe(p.Err)
		res.Fix = p.Err.Hint() + "; run graphrelay check again later"
	}
	return res
}

// describe renders a Graph error as the admin needs it: status, code,
// Graph's own message and the request-id to quote to Microsoft support.
func describe(e *graph.Error) string {
	var b strings.Builder
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d ", e.Status)
	}
	if e.Code != "" {
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if b.Len() == 0 {
		b.WriteString(e.Error())
	}
	if e.RequestID != "" {
		b.WriteString(" (request-id " + e.RequestID + ")")
	}
	return strings.TrimSpace(b.String())
}

// sendTests sends one real message to opts.SendTest as each mailbox, or
// only as opts.SendFrom. It goes through Graph directly, not through SMTP
// and the rules: it tests the tenant, not the devices' configuration.
func sendTests(ctx context.Context, c *graph.Client, cfg *config.Config, opts Options) []Result {
	mailboxes := cfg.Mailboxes
	if opts.SendFrom != "" {
		mailboxes = nil
		for _, m := range cfg.Mailboxes {
			if strings.EqualFold(m.Address, opts.SendFrom) {
				mailboxes = append(mailboxes, m)
			}
		}
		if len(mailboxes) == 0 {
			return []Result{{Name: "send-test", Status: Fail,
				Detail: opts.SendFrom + " is not one of the configured mailboxes; graphrelay sends only as listed mailboxes",
				Fix:    "give --from one of the addresses under mailboxes"}}
		}
	}
	host := opts.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	var out []Result
	for _, m := range mailboxes {
		out = append(out, sendTest(ctx, c, cfg, m, opts.SendTest, host))
	}
	return out
}

func sendTest(ctx context.Context, c *graph.Client, cfg *config.Config, m config.Mailbox, rcpt, host string) Result {
	res := Result{Name: "send-test " + m.Address}
	req := &graph.SendMailRequest{Message: graph.Message{
		Subject: TestSubject,
		Body: graph.ItemBody{ContentType: graph.BodyText, Content: fmt.Sprintf(
			"This message was sent by \"graphrelay check --send-test\" on %s at %s, as the mailbox %s, through Microsoft Graph.\r\n\r\n"+
				"If you can read it, the tenant setup (credential, permission and access policy) works for this mailbox. No action is needed.\r\n",
			host, time.Now().UTC().Format(time.RFC1123), m.Address)},
		ToRecipients: []graph.Recipient{{EmailAddress: graph.EmailAddress{Address: rcpt}}},
	}}
	if !cfg.Graph.SaveToSentItems {
		no := false
		req.SaveToSentItems = &no
	}
	rec, err := c.SendMail(ctx, envelope.Mailbox{Address: m.Address, ID: m.ID}.PathID(), req)
	if err != nil {
		res.Status = Fail
		var e *graph.Error
		if errors.As(err, &e) {
			res.Detail, res.Fix = "Graph refused the test message: "+describe(e), e.Hint()
		} else {
			res.Detail, res.Fix = err.Error(), "see the error"
		}
		return res
	}
	res.Status = OK
	res.Detail = fmt.Sprintf("Graph accepted the test message to %s (request-id %s); Graph's 202 means queued, so look for %q in that inbox (and its junk folder) within a few minutes",
		rcpt, rec.RequestID, TestSubject)
	return res
}

// grantPowerShell is the Exchange Online PowerShell that adds mailbox to
// the Application Access Policy's group and confirms it, as
// docs/tenant-setup.md steps 8 to 10 set it up. The group's name there is
// graphrelay-mailboxes@<domain>; the first command shows the real one.
func grantPowerShell(mailbox, appID string) string {
	if appID == "" {
		appID = "<application (client) ID>"
	}
	domain := mailbox[strings.LastIndex(mailbox, "@")+1:]
	return fmt.Sprintf(`. In Exchange Online PowerShell (Connect-ExchangeOnline):
  Get-ApplicationAccessPolicy | Where-Object AppId -eq '%[2]s' | Format-List ScopeName, AccessRight   # the policy's group
  Add-DistributionGroupMember -Identity graphrelay-mailboxes@%[3]s -Member %[1]s   # that group, if named otherwise
  Test-ApplicationAccessPolicy -Identity %[1]s -AppId %[2]s   # AccessCheckResult: Granted (allow up to an hour)`, mailbox, appID, domain)
}
