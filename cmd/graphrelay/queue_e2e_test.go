package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// queueConfig is fakeConfig in queue mode, with a fresh spool and retries
// fast enough for tests.
func queueConfig(t *testing.T, fake *graphtest.Server, mailboxes ...string) *config.Config {
	cfg := fakeConfig(fake, mailboxes...)
	cfg.Graph.ClientSecret = e2etest.Secret
	cfg.Delivery.Mode = config.ModeQueue
	cfg.Queue.Dir = filepath.Join(t.TempDir(), "spool")
	cfg.Queue.RetryInitial = config.Duration(100 * time.Millisecond)
	cfg.Queue.RetryMax = config.Duration(500 * time.Millisecond)
	cfg.Queue.MaxAge = config.Duration(time.Hour)
	return cfg
}

// smtpSend sends one message and returns the final reply code (250 on
// success). It does not use t, so goroutines may call it.
func smtpSend(addr, from string, rcpts []string, raw string) (int, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	code := func(err error) (int, error) {
		if te, ok := err.(*textproto.Error); ok {
			return te.Code, nil
		}
		return 0, err
	}
	if err := c.Hello("printer.lan"); err != nil {
		return code(err)
	}
	if err := c.Mail(from); err != nil {
		return code(err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			return code(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return code(err)
	}
	if _, err := w.Write([]byte(raw)); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return code(err)
	}
	c.Quit()
	return 250, nil
}

// mustQueue sends a message that must be accepted.
func mustQueue(t *testing.T, addr, from, subject string) {
	t.Helper()
	code, err := smtpSend(addr, from, []string{"alice@company.com"}, e2etest.SimpleMessage(from, subject))
	if err != nil || code != 250 {
		t.Fatalf("%q: reply %d, %v", subject, code, err)
	}
}

func subjects(ds []graphtest.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Message.Subject)
	}
	sort.Strings(out)
	return out
}

// runQueueCmd runs "graphrelay queue ..." in process.
func runQueueCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"queue"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestQueueModeEndToEnd(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	r := startRelay(t, cfg, fake)
	mustQueue(t, r.addr, "alerts@company.com", "queued hello")
	ds := fake.WaitDeliveries(1, 10*time.Second)
	if len(ds) != 1 || ds[0].Message.Subject != "queued hello" || ds[0].Mailbox != "alerts@company.com" {
		t.Fatalf("deliveries = %+v", ds)
	}
	e2etest.WaitFor(t, time.Minute, "delivered log line", func() bool { return strings.Contains(r.logs.String(), "msg=delivered") })
	logs := r.logs.String()
	id := regexp.MustCompile(`msg="message accepted" .*? id=(\w+)`).FindStringSubmatch(logs)
	if id == nil {
		t.Fatalf("no message accepted line:%s", r.logs)
	}
	// "message accepted" carries what "queued" would, which is only
	// logged at debug level.
	if strings.Contains(logs, "level=INFO msg=queued") {
		t.Errorf("an SMTP message got a queued line at info level:%s", r.logs)
	}
	delivered := regexp.MustCompile(`msg=delivered id=` + id[1] + ` client_ip=127.0.0.1 .*mailbox=alerts@company.com rcpts=1 size=\d+ .*request_id=` +
		ds[0].RequestID + ` client_request_id=\S+ .*elapsed_ms=`)
	if !delivered.MatchString(logs) {
		t.Errorf("the delivered line lacks the lifecycle fields:%s", r.logs)
	}
	if entries, _ := os.ReadDir(filepath.Join(cfg.Queue.Dir, "queue")); len(entries) != 0 {
		t.Errorf("queue/ still holds %d entries", len(entries))
	}
}

// TestQueueOutageRecovery: Graph answers 503 for a while; every accepted
// message is delivered at its first try after recovery (which the backoff
// ceiling, retry_max, keeps at most one interval away).
func TestQueueOutageRecovery(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com", "scans@company.com")
	r := startRelay(t, cfg, fake)
	fake.SetGraphOutage(&graphtest.Fault{Status: 503})
	const n = 8
	for i := range n {
		from := []string{"alerts@company.com", "scans@company.com"}[i%2]
		mustQueue(t, r.addr, from, fmt.Sprintf("outage %d", i))
	}
	// Let the outage last through several backoff rounds.
	e2etest.WaitFor(t, time.Minute, "three failed rounds", func() bool { return count503(fake) >= 3*n })
	fake.SetGraphOutage(nil)
	recovery := time.Now()
	ds := fake.WaitDeliveries(n, 20*time.Second)
	if len(ds) != n {
		t.Fatalf("%d of %d delivered after recovery", len(ds), n)
	}
	// The fake records a request when its answer is written, just after
	// the delivery.
	e2etest.WaitFor(t, time.Minute, "requests recorded", func() bool {
		k := 0
		for _, g := range fake.GraphRequests() {
			if g.Status == 202 {
				k++
			}
		}
		return k >= n
	})
	// Each message needed at most one request after the recovery (its
	// next scheduled try), and it succeeded: none waited for more than
	// one backoff interval, none was lost, none was sent twice.
	after, accepted := 0, 0
	var last time.Time
	for _, g := range fake.GraphRequests() {
		if g.Status == 202 {
			accepted++
		}
		if g.Start.After(recovery) {
			after++
			if g.Status != 202 {
				t.Errorf("request after recovery answered %d", g.Status)
			}
		}
	}
	for _, d := range ds {
		if d.At.After(last) {
			last = d.At
		}
	}
	if after > n || accepted != n {
		t.Errorf("%d requests after recovery and %d accepted in all, for %d messages", after, accepted, n)
	}
	// How long that took is reported, not asserted: a busy machine
	// stretches it, and the cap on the backoff interval is the queue's
	// backoff tests' subject.
	t.Logf("last delivery %s after recovery (retry_max %s)", last.Sub(recovery).Round(time.Millisecond), cfg.Queue.RetryMax.D())
	if got := fmt.Sprint(subjects(ds)); !strings.Contains(got, "outage 0") || !strings.Contains(got, "outage 7") {
		t.Errorf("delivered %s", got)
	}
}

func count503(fake *graphtest.Server) int {
	n := 0
	for _, g := range fake.GraphRequests() {
		if g.Status == 503 {
			n++
		}
	}
	return n
}

// TestQueueThrottleStorm: one mailbox gets 429 with Retry-After 2.5 on
// every request; no request for it arrives before each Retry-After has
// elapsed, and the other mailbox keeps flowing meanwhile.
//
// The throttled mailbox is limited to one request at a time here, so that
// "a request sent after the 429 arrived" can be read from the fake's
// timestamps alone: with several in flight, requests dispatched together
// with the throttled one legitimately reach the fake after its 429 left.
func TestQueueThrottleStorm(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "busy@company.com", "free@company.com")
	cfg.Mailboxes[0].MaxConcurrency = 1
	// Retry-After is honoured up to queue.retry_max.
	cfg.Queue.RetryMax = config.Duration(10 * time.Second)
	r := startRelay(t, cfg, fake)
	fake.SetGraphOutage(&graphtest.Fault{Mailbox: "busy@company.com", Status: 429, RetryAfter: "2.5"})
	for i := range 4 {
		mustQueue(t, r.addr, "busy@company.com", fmt.Sprintf("busy %d", i))
		mustQueue(t, r.addr, "free@company.com", fmt.Sprintf("free %d", i))
	}
	free := fake.WaitDeliveries(4, 10*time.Second)
	for _, d := range free {
		if d.Mailbox != "free@company.com" {
			t.Fatalf("delivered as %s during the storm", d.Mailbox)
		}
	}
	// Keep the storm up for a second round of 429s, then lift it.
	e2etest.WaitFor(t, time.Minute, "a second round of 429s", func() bool {
		rounds := map[int64]bool{}
		for _, g := range fake.GraphRequests() {
			if g.Status == 429 {
				rounds[g.Start.Unix()] = true
			}
		}
		return len(rounds) >= 2
	})
	fake.SetGraphOutage(nil)
	if ds := fake.WaitDeliveries(8, 15*time.Second); len(ds) != 8 {
		t.Fatalf("%d of 8 delivered after the storm", len(ds))
	}
	var busy []graphtest.GraphRequest
	for _, g := range fake.GraphRequests() {
		if g.Mailbox == "busy@company.com" {
			busy = append(busy, g)
		}
	}
	throttles := 0
	for _, g := range busy {
		if g.Status != 429 {
			continue
		}
		throttles++
		floor := g.End.Add(2500 * time.Millisecond)
		for _, h := range busy {
			if h.Start.After(g.End) && h.Start.Before(floor) {
				t.Errorf("request for busy@ %s after a 429, before its Retry-After of 2.5s elapsed", h.Start.Sub(g.End))
			}
		}
	}
	t.Logf("%d requests for the throttled mailbox, %d answered 429", len(busy), throttles)
	if throttles < 2 {
		t.Errorf("only %d 429s seen; the storm did not test anything", throttles)
	}
}

// TestQueueTokenOutage: while the token endpoint is down, mail is accepted
// and waits; it flows once Entra is back.
func TestQueueTokenOutage(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	fake.SetTokenOutage(503)
	cfg := queueConfig(t, fake, "alerts@company.com")
	r := startRelay(t, cfg, fake)
	for i := range 3 {
		mustQueue(t, r.addr, "alerts@company.com", fmt.Sprintf("token %d", i))
	}
	// graph holds a failed token request for a second, so this is a few
	// rounds of retries.
	e2etest.WaitFor(t, time.Minute, "failed token requests", func() bool { return len(fake.TokenRequests()) >= 2 })
	if n := len(fake.Deliveries()); n != 0 {
		t.Fatalf("%d delivered without a token", n)
	}
	code, out, _ := runQueueCmd(t, "list", "--dir", cfg.Queue.Dir)
	if code != 0 || !strings.Contains(out, "3 message(s) waiting") || !strings.Contains(out, "token") {
		t.Errorf("queue list during the outage (%d):\n%s", code, out)
	}
	fake.SetTokenOutage(0)
	if ds := fake.WaitDeliveries(3, 10*time.Second); len(ds) != 3 {
		t.Fatalf("%d of 3 delivered after Entra recovered", len(ds))
	}
}

// TestQueueMailboxConcurrency: however many clients send at once, Graph
// never sees more than 4 requests in flight for one mailbox.
func TestQueueMailboxConcurrency(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{Latency: 30 * time.Millisecond})
	cfg := queueConfig(t, fake, "alerts@company.com", "scans@company.com")
	r := startRelay(t, cfg, fake)
	const clients, each = 8, 6
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				from := []string{"alerts@company.com", "scans@company.com"}[(c+i)%2]
				if code, err := smtpSend(r.addr, from, []string{"bob@company.com"}, e2etest.SimpleMessage(from, fmt.Sprintf("c%d-%d", c, i))); code != 250 {
					errs <- fmt.Errorf("client %d message %d: %d %v", c, i, code, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ds := fake.WaitDeliveries(clients*each, 30*time.Second); len(ds) != clients*each {
		t.Fatalf("%d of %d delivered", len(ds), clients*each)
	}
	for _, mb := range []string{"alerts@company.com", "scans@company.com"} {
		got := fake.MaxInFlight(mb)
		t.Logf("max in flight for %s: %d", mb, got)
		if got > 4 {
			t.Errorf("%s had %d requests in flight; Graph allows 4", mb, got)
		}
		if got < 2 {
			t.Errorf("%s never had parallel requests (%d)", mb, got)
		}
	}
	for _, g := range fake.GraphRequests() {
		if g.Status == 429 {
			t.Errorf("Graph throttled a request (%s): the concurrency limit was exceeded", g.Mailbox)
		}
	}
}

// TestQueueAmbiguousOutcome: Graph accepts the message but the answer is a
// 504; graphrelay retries (at least once) and logs the possible duplicate
// with the client-request-id of the first request.
func TestQueueAmbiguousOutcome(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	r := startRelay(t, cfg, fake)
	fake.FailGraph(graphtest.Fault{Status: 504, AfterAccept: true})
	mustQueue(t, r.addr, "alerts@company.com", "maybe twice")
	ds := fake.WaitDeliveries(2, 10*time.Second)
	if len(ds) != 2 || ds[0].Message.Subject != "maybe twice" || ds[1].Message.Subject != "maybe twice" {
		t.Fatalf("deliveries = %d; an ambiguous 504 must be retried", len(ds))
	}
	e2etest.WaitFor(t, time.Minute, "log", func() bool { return strings.Contains(r.logs.String(), "msg=delivered") })
	logs := r.logs.String()
	if !strings.Contains(logs, "possible duplicate") || !strings.Contains(logs, "client_request_id="+ds[0].ClientRequestID) {
		t.Errorf("the possible duplicate is not logged with client-request-id %s:%s", ds[0].ClientRequestID, r.logs)
	}
}

// TestQueueDeadLetterNotice: a permanent refusal moves the message to
// failed/ at once and sends a notice, as the notice mailbox, with the
// original attached.
func TestQueueDeadLetterNotice(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{AccessPolicy: []string{"alerts@company.com"}})
	cfg := queueConfig(t, fake, "alerts@company.com", "denied@company.com")
	cfg.Queue.NoticeTo = "it@company.com"
	r := startRelay(t, cfg, fake)
	mustQueue(t, r.addr, "denied@company.com", "Toner low")
	ds := fake.WaitDeliveries(1, 10*time.Second)
	if len(ds) != 1 {
		t.Fatal("no notice delivered")
	}
	n := ds[0]
	if n.Mailbox != "alerts@company.com" || n.Message.Subject != "[graphrelay] Undeliverable: Toner low" || addrs(n.Message.To)[0] != "it@company.com" {
		t.Errorf("notice = mailbox %s subject %q to %v", n.Mailbox, n.Message.Subject, n.Message.To)
	}
	for _, want := range []string{"denied@company.com", "alice@company.com", "ErrorAccessDenied", "Application Access Policy"} {
		if !strings.Contains(n.Message.Body, want) {
			t.Errorf("notice text lacks %q:\n%s", want, n.Message.Body)
		}
	}
	var eml bool
	for _, a := range n.Message.Attachments {
		if a.ContentType == "message/rfc822" && bytes.Contains(a.Content, []byte("Subject: Toner low")) {
			eml = true
		}
	}
	if !eml {
		t.Errorf("original not attached: %+v", n.Message.Attachments)
	}
	hasHeader := false
	for _, h := range n.Message.Headers {
		if strings.EqualFold(h.Name, "X-Graphrelay-Notice") && strings.HasPrefix(h.Value, "failed") {
			hasHeader = true
		}
	}
	if !hasHeader {
		t.Errorf("notice not marked: headers %+v", n.Message.Headers)
	}
	// The notice is queued before the dead letter moves to failed/.
	var failed []struct {
		ID, Reason, Hint string
		Attempts         int
	}
	// The .msg moves first and its record follows (queue/FORMAT.md); a
	// listing between the two renames shows the dead letter without its
	// reason, which a slow machine (Wine) catches.
	e2etest.WaitFor(t, time.Minute, "the dead letter and its record in failed/", func() bool {
		code, out, _ := runQueueCmd(t, "failed", "--json", "--dir", cfg.Queue.Dir)
		failed = nil
		return code == 0 && json.Unmarshal([]byte(out), &failed) == nil && len(failed) == 1 && failed[0].Reason != ""
	})
	if failed[0].Reason != "permanent" || failed[0].Attempts != 1 || !strings.Contains(failed[0].Hint, "Application Access Policy") {
		t.Errorf("dead letter = %+v", failed[0])
	}
	e2etest.WaitFor(t, time.Minute, "the failed line", func() bool {
		return strings.Contains(r.logs.String(), "msg=failed id="+failed[0].ID)
	})
}

// TestQueueAdminCommands drives every "graphrelay queue" command against a
// running daemon, then one against the stopped spool.
func TestQueueAdminCommands(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	cfg.Queue.RetryInitial, cfg.Queue.RetryMax = config.Duration(time.Hour), config.Duration(time.Hour)
	// Counting what waits and what failed is simpler without notices,
	// which also shows that "none" turns them off.
	cfg.Queue.NoticeTo = config.NoticeToNone
	r := startRelay(t, cfg, fake)
	fake.SetGraphOutage(&graphtest.Fault{Status: 503})
	mustQueue(t, r.addr, "alerts@company.com", "admin one")
	mustQueue(t, r.addr, "alerts@company.com", "admin two")
	dir := cfg.Queue.Dir
	var entries []struct {
		ID        string `json:"id"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"last_error"`
		Mailbox   string `json:"mailbox"`
	}
	e2etest.WaitFor(t, time.Minute, "both tried", func() bool {
		_, out, _ := runQueueCmd(t, "list", "--json", "--dir", dir)
		entries = nil
		json.Unmarshal([]byte(out), &entries)
		return len(entries) == 2 && strings.Contains(entries[0].LastError, "503") && strings.Contains(entries[1].LastError, "503")
	})
	one, two := entries[0].ID, entries[1].ID
	code, out, _ := runQueueCmd(t, "list", "--dir", dir)
	for _, want := range []string{"ID", "NEXT TRY", one, two, "alerts@company.com", "alice@company.com", "503", "2 message(s) waiting"} {
		if !strings.Contains(out, want) {
			t.Errorf("queue list lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	code, out, _ = runQueueCmd(t, "show", one, "--dir", dir)
	if code != 0 || !strings.Contains(out, "Subject: admin one") || !strings.Contains(out, "HTTP 503") || !strings.Contains(out, "Sender:      <alerts@company.com>") {
		t.Errorf("queue show (%d):\n%s", code, out)
	}
	if code, out, _ = runQueueCmd(t, "delete", two, "--dir", dir); code != 0 || !strings.Contains(out, "deleted") {
		t.Errorf("queue delete (%d): %s", code, out)
	}
	// The cause turns permanent; retry makes the attempt now.
	fake.SetGraphOutage(&graphtest.Fault{Status: 403, Code: "ErrorSendAsDenied"})
	if code, out, _ = runQueueCmd(t, "retry", one, "--dir", dir); code != 0 {
		t.Errorf("queue retry (%d): %s", code, out)
	}
	e2etest.WaitFor(t, time.Minute, "dead letter", func() bool {
		_, out, _ := runQueueCmd(t, "failed", "--dir", dir)
		return strings.Contains(out, one) && strings.Contains(out, "permanent")
	})
	if _, out, _ = runQueueCmd(t, "list", "--dir", dir); !strings.Contains(out, "0 message(s) waiting") {
		t.Errorf("queue list after delete and failure:\n%s", out)
	}
	// The admin fixes the cause and requeues.
	fake.SetGraphOutage(nil)
	if code, out, errOut := runQueueCmd(t, "requeue", one, "--dir", dir); code != 0 {
		t.Errorf("queue requeue (%d): %s%s", code, out, errOut)
	}
	if ds := fake.WaitDeliveries(1, 10*time.Second); len(ds) != 1 || ds[0].Message.Subject != "admin one" {
		t.Fatalf("deliveries after requeue: %d", len(ds))
	}
	if code, out, _ = runQueueCmd(t, "retry", "--all", "--dir", dir); code != 0 || !strings.Contains(out, "0 messages") {
		t.Errorf("queue retry --all (%d): %s", code, out)
	}
	if code, _, errOut := runQueueCmd(t, "show", two, "--dir", dir); code != 1 || !strings.Contains(errOut, "no message") {
		t.Errorf("show of a deleted message (%d): %s", code, errOut)
	}
	if code, _, _ := runQueueCmd(t, "retry", "--dir", dir); code != 2 {
		t.Errorf("retry without an id exits %d, want 2", code)
	}
	r.app.Close()
	// With the daemon stopped, the commands work on the spool directly.
	if code, out, _ = runQueueCmd(t, "list", "--dir", dir); code != 0 || !strings.Contains(out, "0 message(s)") {
		t.Errorf("offline list (%d): %s", code, out)
	}
	// --config finds queue.dir too.
	cfgFile := filepath.Join(t.TempDir(), "graphrelay.yaml")
	os.WriteFile(cfgFile, []byte("queue:\n  dir: "+dir+"\n"), 0o600)
	if code, out, errOut := runQueueCmd(t, "failed", "--config", cfgFile); code != 0 || !strings.Contains(out, "0 dead letter(s)") {
		t.Errorf("failed --config (%d): %s %s", code, out, errOut)
	}
}

// spoolThenStop starts the daemon, queues one message per subject for
// alerts@ while Graph is down, waits for each message's first attempt,
// stops the daemon and ends the outage: the messages wait in the spool for
// the test's next start.
func spoolThenStop(t *testing.T, fake *graphtest.Server, cfg *config.Config, subjects ...string) {
	t.Helper()
	r := startRelay(t, cfg, fake)
	fake.SetGraphOutage(&graphtest.Fault{Status: 503})
	for _, s := range subjects {
		mustQueue(t, r.addr, "alerts@company.com", s)
	}
	e2etest.WaitFor(t, time.Minute, "first attempts", func() bool { return count503(fake) >= len(subjects) })
	r.app.Close()
	fake.SetGraphOutage(nil)
}

// TestQueueRestartResumes: messages still waiting when the daemon stops
// are delivered by the next one.
func TestQueueRestartResumes(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	spoolThenStop(t, fake, cfg, "resume 0", "resume 1", "resume 2")
	before := len(fake.Deliveries())
	cfg2 := *cfg
	cfg2.SMTP.Listeners = []config.Listener{{Name: "test", Address: "127.0.0.1:0"}}
	r2 := startRelay(t, &cfg2, fake)
	ds := fake.WaitDeliveries(before+3, 10*time.Second)
	if got := subjects(ds[before:]); fmt.Sprint(got) != "[resume 0 resume 1 resume 2]" {
		t.Errorf("after restart delivered %v", got)
	}
	if !strings.Contains(r2.logs.String(), "resuming spooled messages") {
		t.Errorf("restart not logged:%s", r2.logs)
	}
}
