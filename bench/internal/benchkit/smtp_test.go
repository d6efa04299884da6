package benchkit

import (
	"bufio"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// scripted is an SMTP server for one connection that answers each command
// in order; final writes the reply to the final dot (in as many writes
// as it likes), and data354 the reply to DATA.
type scripted struct {
	data354 string
	final   func(c net.Conn)
}

func (s scripted) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		c.Write([]byte("220 test ESMTP\r\n"))
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
			case "EHLO", "MAIL", "RCPT":
				c.Write([]byte("250 ok\r\n"))
			case "DATA":
				c.Write([]byte(s.data354))
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
				}
				if s.final != nil {
					s.final(c)
				}
			case "QUIT":
				c.Write([]byte("221 bye\r\n"))
				return
			}
		}
	}()
	return ln.Addr().String()
}

func send(t *testing.T, addr string) Reply {
	t.Helper()
	c, err := Dial(addr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	r, err := c.Send("printer@company.com", []string{"alice@company.com"}, strings.NewReader("Subject: x\r\n\r\nhello\r\n"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if r.Code != 250 {
		t.Fatalf("reply %d %q, want 250", r.Code, r.Text)
	}
	return r
}

// TestArrivalIsTheFirstSegments: a reply written in two segments is
// stamped with the first one's arrival, which is after the client began
// writing its final dot, before the server wrote the second segment, and
// before the client had read the whole reply.
func TestArrivalIsTheFirstSegments(t *testing.T) {
	secondWrite := make(chan time.Time, 1)
	addr := scripted{data354: "354 go ahead\r\n", final: func(c net.Conn) {
		c.Write([]byte("250 2.0.0 "))
		// Go sockets have TCP_NODELAY: each write is its own segment.
		secondWrite <- time.Now()
		c.Write([]byte("queued as X1\r\n"))
	}}.serve(t)
	r := send(t, addr)
	if r.QueueID() != "X1" {
		t.Errorf("reply text %q: the reply was not read whole", r.Text)
	}
	if runtime.GOOS != "linux" {
		if !r.Arrived.IsZero() {
			t.Errorf("an arrival stamp off Linux: %v", r.Arrived)
		}
		return
	}
	if r.Arrived.IsZero() {
		t.Fatal("no kernel arrival stamp on Linux")
	}
	second := <-secondWrite
	if r.Arrived.Before(r.DataDone) {
		t.Errorf("arrival %v is before the client began writing the dot (%v)", r.Arrived, r.DataDone)
	}
	if r.Arrived.After(second) {
		t.Errorf("arrival %v is after the second segment was written (%v): not the first segment's stamp", r.Arrived, second)
	}
	if r.Arrived.After(r.Replied) || r.Replied.After(time.Now()) {
		t.Errorf("arrival %v, replied %v, now %v: out of order", r.Arrived, r.Replied, time.Now())
	}
}

// TestArrivalFallsBackWhenBuffered: a server that sends the final reply
// with the 354 leaves it in the client's buffer, where the kernel's stamp
// no longer applies; the client must neither wait for the socket nor
// stamp it, and still read the 250.
func TestArrivalFallsBackWhenBuffered(t *testing.T) {
	addr := scripted{data354: "354 go ahead\r\n250 2.0.0 queued as EARLY\r\n"}.serve(t)
	r := send(t, addr)
	if !r.Arrived.IsZero() {
		t.Errorf("a reply read from the buffer was stamped %v", r.Arrived)
	}
	if r.QueueID() != "EARLY" {
		t.Errorf("reply text %q", r.Text)
	}
}
