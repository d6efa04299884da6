package smtpd

import (
	"net"
	"testing"
)

// countingConn records each Write call separately.
type countingConn struct {
	net.Conn
	writes []string
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

// A multi-line reply, which go-smtp flushes line by line, reaches the
// socket in one write; single-line replies and TLS records go out as they
// come.
func TestMultiLineReplyIsOneWrite(t *testing.T) {
	cc := &countingConn{}
	c := &trackedConn{Conn: cc}
	tlsRecord := "\x17\x03\x03\x00\x05hello"
	for _, p := range []string{
		"250-bench.localhost Hello\r\n", "250-PIPELINING\r\n", "250-8BITMIME\r\n", "250 CHUNKING\r\n",
		"250 2.0.0 Roger, accepting mail\r\n",
		"354 Go ahead\r\n",
		tlsRecord,
		"250-x\r\n", "250 y\r\n",
	} {
		if n, err := c.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	want := []string{
		"250-bench.localhost Hello\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 CHUNKING\r\n",
		"250 2.0.0 Roger, accepting mail\r\n",
		"354 Go ahead\r\n",
		tlsRecord,
		"250-x\r\n250 y\r\n",
	}
	if len(cc.writes) != len(want) {
		t.Fatalf("%d writes %q, want %d %q", len(cc.writes), cc.writes, len(want), want)
	}
	for i := range want {
		if cc.writes[i] != want[i] {
			t.Errorf("write %d = %q, want %q", i, cc.writes[i], want[i])
		}
	}
}
