package main

import (
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/internal/e2etest"
)

// TestSMTPSmuggling sends every end-of-data look-alike (the SMTP smuggling
// class, SEC Consult 2023, and the smtpsmug variants) followed by a second,
// smuggled transaction, then the real <CRLF>.<CRLF>. It asserts on what
// reaches the fake Graph, not on reply codes: exactly one message per
// connection, and never the smuggled one.
func TestSMTPSmuggling(t *testing.T) {
	t.Parallel()
	cert := newAppCert(t, "graphrelay")
	fake := graphtest.New(t, graphtest.Config{Certificates: []*x509.Certificate{cert.cert}})
	cfg := fakeConfig(fake, "alerts@company.com")
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	r := startRelay(t, cfg, fake)

	variants := map[string]string{
		"LF.LF":         "\n.\n",
		"LF.CRLF":       "\n.\r\n",
		"CR.CR":         "\r.\r",
		"CR.CRLF":       "\r.\r\n",
		"CR.LF":         "\r.\n",
		"CRLF.LF":       "\r\n.\n",
		"CRLF.CR":       "\r\n.\r",
		"LF.CR":         "\n.\r",
		"CRLF NUL.CRLF": "\r\n\x00.\r\n",
		"CRLF.NUL CRLF": "\r\n.\x00\r\n",
		"CRLF.CR CRLF":  "\r\n.\r\r\n",
		"CRLF.SP CRLF":  "\r\n. \r\n",
		"LF LF.LF":      "\n\n.\n",
		"CR CR.CR CR":   "\r\r.\r\r",
	}
	smuggled := "MAIL FROM:<ceo@company.com>\r\nRCPT TO:<victim@company.com>\r\nDATA\r\nFrom: ceo@company.com\r\nSubject: smuggled\r\n\r\nwire the money\r\n"
	for name, eod := range variants {
		if strings.Contains(eod, "\r\n.\r\n") {
			t.Fatalf("variant %s contains the real terminator", name)
		}
		t.Run(name, func(t *testing.T) {
			fake.Reset()
			conn, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			io.WriteString(conn, "EHLO client.test\r\nMAIL FROM:<alerts@company.com>\r\nRCPT TO:<ops@company.com>\r\nDATA\r\n")
			// Give the server time to answer 354 so the body is not read as
			// pipelined commands by a server that (wrongly) rejected DATA.
			time.Sleep(50 * time.Millisecond)
			io.WriteString(conn, "From: alerts@company.com\r\nSubject: legit "+name+"\r\n\r\nfirst line"+eod+smuggled+"\r\n.\r\nQUIT\r\n")
			io.ReadAll(conn) // until the server closes after QUIT
			ds := fake.Deliveries()
			if len(ds) != 1 {
				for _, d := range ds {
					t.Logf("delivered: %q to %v", d.Message.Subject, d.Message.To)
				}
				t.Fatalf("%d messages reached Graph, want exactly 1", len(ds))
			}
			if ds[0].Message.Subject != "legit "+name {
				t.Errorf("delivered subject %q", ds[0].Message.Subject)
			}
			if !strings.Contains(ds[0].Message.Body, "wire the money") {
				t.Errorf("the smuggled text was not kept as part of the first message's body: %q", ds[0].Message.Body)
			}
		})
	}
}

// TestBDATCutShortNotDelivered cuts a BDAT LAST chunk short on a raw
// socket, in queue mode against the fake Graph: the message must reach
// neither the spool nor Graph, because the client saw no reply and will
// send it again. A complete message sent afterwards on the same relay is
// the control that the spool and delivery work.
func TestBDATCutShortNotDelivered(t *testing.T) {
	t.Parallel()
	fake := e2etest.NewFake(t, graphtest.Config{})
	cfg := queueConfig(t, fake, "alerts@company.com")
	r := startRelay(t, cfg, fake)
	body := "From: alerts@company.com\r\nTo: ops@company.com\r\nSubject: cut short\r\n\r\n" + strings.Repeat("line of a long scan\r\n", 200)
	for i, cut := range []int{len(body) / 2, 80, len(body) - 1} {
		conn, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(conn, "EHLO client.test\r\nMAIL FROM:<alerts@company.com>\r\nRCPT TO:<ops@company.com>\r\n")
		io.WriteString(conn, "BDAT "+strconv.Itoa(len(body))+" LAST\r\n"+body[:cut])
		conn.(*net.TCPConn).CloseWrite()
		out, _ := io.ReadAll(conn)
		conn.Close()
		if strings.Contains(string(out), "queued as") {
			t.Fatalf("cut at %d of %d: accepted:\n%s", cut, len(body), out)
		}
		e2etest.WaitFor(t, time.Minute, "the refusal in the log", func() bool {
			return strings.Count(r.logs.String(), "Connection lost while receiving") >= i+1 ||
				strings.Count(r.logs.String(), "client's connection ended before the message was complete") >= i+1
		})
	}
	mustQueue(t, r.addr, "alerts@company.com", "complete")
	ds := fake.WaitDeliveries(1, 10*time.Second)
	for _, d := range fake.Deliveries() {
		if d.Message.Subject != "complete" {
			t.Errorf("delivered %q, a message cut short", d.Message.Subject)
		}
	}
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want only the complete message", len(ds))
	}
	for _, dir := range []string{"queue", "failed", "tmp"} {
		e2etest.WaitFor(t, time.Minute, dir+"/ empty", func() bool {
			entries, _ := os.ReadDir(filepath.Join(cfg.Queue.Dir, dir))
			return len(entries) == 0
		})
	}
}
