package benchkit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"time"
)

// Client is a plain SMTP client that, unlike net/smtp, keeps the text of
// the final reply (which carries the queue id) and timestamps the end of
// DATA and its reply. It sends no PIPELINING: each command waits for its
// reply, as printers and most libraries do.
type Client struct {
	conn    net.Conn
	tc      *textproto.Conn
	timeout time.Duration
	// stamps is whether the kernel stamps the segments this connection
	// receives with their arrival time (Linux, SO_TIMESTAMPNS).
	stamps bool
}

// Reply is the outcome of one transaction. Code is 0 when the connection
// failed before a final reply.
type Reply struct {
	Code int
	Text string
	// DataDone is the client's clock just before the write that carries
	// the final ".", Replied when the reply to it had been read and
	// parsed: the "end of DATA to 250" latency by the client's clock,
	// which includes any wait of the client for a CPU.
	DataDone, Replied time.Time
	// Arrived is when the first segment of that reply reached the
	// client's socket, by the kernel's receive timestamp: the same
	// latency without the client's own scheduling delay. It is zero when
	// the kernel gave no stamp, or when the reply had already been read
	// into the client's buffer with an earlier one (which a server that
	// answers in order never causes); then only the client's clock counts.
	Arrived time.Time
}

// QueueID is the id in "250 2.0.0 queued as <id>", or "".
func (r Reply) QueueID() string {
	_, id, ok := strings.Cut(r.Text, "queued as ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(id)
}

// Dial connects, reads the greeting and says EHLO. timeout bounds each
// step and, later, each transaction.
func Dial(addr string, timeout time.Duration) (*Client, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, tc: textproto.NewConn(conn), timeout: timeout, stamps: enableRxTimestamps(conn)}
	conn.SetDeadline(time.Now().Add(timeout))
	if _, _, err := c.tc.ReadResponse(220); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if err := c.cmd(250, "EHLO bench.lan"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	return c, nil
}

func (c *Client) cmd(expect int, format string, args ...any) error {
	if err := c.tc.PrintfLine(format, args...); err != nil {
		return err
	}
	_, _, err := c.tc.ReadResponse(expect)
	return err
}

// Send runs one transaction: MAIL, RCPT, DATA with msg (dot-stuffed here),
// and returns the final reply. err is set when the transaction did not
// reach a final 2xx; a refusal is a *textproto.Error with the reply code.
func (c *Client) Send(from string, rcpts []string, msg io.Reader) (Reply, error) {
	var r Reply
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if err := c.cmd(250, "MAIL FROM:<%s>", from); err != nil {
		return r, reply(&r, err)
	}
	for _, rcpt := range rcpts {
		if err := c.cmd(250, "RCPT TO:<%s>", rcpt); err != nil {
			return r, reply(&r, err)
		}
	}
	if err := c.cmd(354, "DATA"); err != nil {
		return r, reply(&r, err)
	}
	w := c.tc.DotWriter()
	if _, err := io.Copy(w, msg); err != nil {
		return r, err
	}
	// The start is taken before the write, so that any delay after it
	// (the write itself, the client's being descheduled) counts against
	// the server.
	r.DataDone = time.Now()
	if err := w.Close(); err != nil { // writes the final "." and flushes
		return r, err
	}
	// The reply's arrival can only be stamped while it is still in the
	// socket: if the buffered reader already holds bytes, they came
	// before (or with) it.
	if c.stamps && c.tc.R.Buffered() == 0 {
		r.Arrived = rxTimestamp(c.conn)
	}
	code, text, err := c.tc.ReadResponse(250)
	r.Replied = time.Now()
	r.Code, r.Text = code, text
	return r, err
}

func reply(r *Reply, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		r.Code, r.Text = te.Code, te.Msg
	}
	return err
}

// Quit sends QUIT and closes the connection. It waits for the 221, as real clients (net/smtp, smtplib, swaks) do:
// a client that hangs up and reconnects at once can find its previous
// session still counted against the per-IP connection limit, because the
// server has not read its QUIT yet, and the benchmark measured 421s no
// real client sees.
func (c *Client) Quit() error {
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if err := c.tc.PrintfLine("QUIT"); err == nil {
		c.tc.ReadResponse(221)
	}
	return c.conn.Close()
}

// Close drops the connection.
func (c *Client) Close() error { return c.conn.Close() }

// SendFile sends the message in path as the only transaction of a new
// connection.
func SendFile(addr, from string, rcpts []string, path string, timeout time.Duration) (Reply, error) {
	f, err := os.Open(path)
	if err != nil {
		return Reply{}, err
	}
	defer f.Close()
	c, err := Dial(addr, timeout)
	if err != nil {
		return Reply{}, err
	}
	defer c.Quit()
	return c.Send(from, rcpts, bufio.NewReaderSize(f, 64<<10))
}
