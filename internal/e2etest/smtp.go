package e2etest

import (
	"fmt"
	"net"
	"net/textproto"
	"time"
)

// Result is how one raw SMTP transaction ended.
type Result struct {
	Code int
	Msg  string
	// DataDone is when the final "." was written, Replied when the reply
	// to it was read: the "end of DATA to 250" latency.
	DataDone, Replied time.Time
}

// SendRawSMTP sends one message over a plain connection and returns the
// reply to the end of DATA with its text (which carries the queue id),
// unlike net/smtp, which hides it. err is a transport failure: the
// connection broke or timed out before a final reply. It does not use a
// testing.T, so goroutines may call it.
func SendRawSMTP(addr, from string, rcpts []string, raw string, timeout time.Duration) (Result, error) {
	var res Result
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	tc := textproto.NewConn(conn)
	if _, _, err := tc.ReadResponse(220); err != nil {
		return res, err
	}
	cmd := func(expect int, format string, args ...any) error {
		if err := tc.PrintfLine(format, args...); err != nil {
			return err
		}
		code, msg, err := tc.ReadResponse(expect)
		if err != nil {
			res.Code, res.Msg = code, msg
		}
		return err
	}
	if err := cmd(250, "EHLO printer.lan"); err != nil {
		return res, replyErr(res, err)
	}
	if err := cmd(250, "MAIL FROM:<%s>", from); err != nil {
		return res, replyErr(res, err)
	}
	for _, r := range rcpts {
		if err := cmd(250, "RCPT TO:<%s>", r); err != nil {
			return res, replyErr(res, err)
		}
	}
	if err := cmd(354, "DATA"); err != nil {
		return res, replyErr(res, err)
	}
	w := tc.DotWriter()
	if _, err := w.Write([]byte(raw)); err != nil {
		return res, err
	}
	if err := w.Close(); err != nil {
		return res, err
	}
	res.DataDone = time.Now()
	code, msg, err := tc.ReadResponse(250)
	res.Replied = time.Now()
	res.Code, res.Msg = code, msg
	if err != nil {
		return res, replyErr(res, err)
	}
	tc.PrintfLine("QUIT")
	return res, nil
}

// replyErr keeps a refusal (a reply code) apart from a transport error.
func replyErr(res Result, err error) error {
	if _, ok := err.(*textproto.Error); ok && res.Code != 0 {
		return nil
	}
	return fmt.Errorf("smtp: %w", err)
}
