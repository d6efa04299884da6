package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// messageSize is the size of every throughput message: an alert or a
// small report, the bulk of what a LAN relay carries.
const messageSize = 4096

// body is shared by every message; only the header differs. It holds no
// line starting with ".", so dot-stuffing leaves the size unchanged.
var body = func() string {
	line := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiu\r\n"
	return strings.Repeat(line, messageSize/len(line)+1)
}()

// message returns a 4 KB message from mailbox with a unique subject, which
// is how a delivery at the fake is matched to the client's 250.
func message(mailbox, subject string) io.Reader {
	hdr := fmt.Sprintf("From: Printer <%s>\r\nTo: Alice <alice@company.com>\r\nSubject: %s\r\nDate: %s\r\n"+
		"Message-ID: <%s@bench.lan>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		mailbox, subject, time.Now().Format(time.RFC1123Z), subject)
	n := messageSize - len(hdr)
	whole := n - n%70
	tail := ""
	if r := n % 70; r >= 2 { // a short last line makes the size exact
		tail = strings.Repeat("x", r-2) + "\r\n"
	}
	return io.MultiReader(strings.NewReader(hdr), strings.NewReader(body[:whole]), strings.NewReader(tail))
}
