package floor

import (
	"bytes"
	"errors"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// serve starts a floor server on 127.0.0.1:0 and returns its address.
func serve(t *testing.T, o Options) string {
	t.Helper()
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil && !errors.Is(err, smtpClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// message is CRLF text with a line that starts with a dot, which net/smtp
// stuffs and the server must unstuff; large makes it longer than the
// write buffer, so that it takes more than one write.
func message(large bool) []byte {
	var b strings.Builder
	b.WriteString("From: <printer@company.com>\r\nTo: <alice@company.com>\r\nSubject: floor\r\n\r\n")
	b.WriteString(".a line that starts with a dot\r\n")
	n := 10
	if large {
		n = 3 * bufSize / 40
	}
	for range n {
		b.WriteString("0123456789012345678901234567890123456\r\n")
	}
	return []byte(b.String())
}

func TestBareAcceptsAMessage(t *testing.T) {
	addr := serve(t, Options{Kind: "bare"})
	if err := smtp.SendMail(addr, nil, "printer@company.com", []string{"alice@company.com"}, message(false)); err != nil {
		t.Fatalf("net/smtp SendMail: %v", err)
	}
}

func TestDurableStoresBeforeThe250(t *testing.T) {
	for _, large := range []bool{false, true} {
		dir := t.TempDir()
		var mu sync.Mutex
		var seen [][]byte
		addr := serve(t, Options{Kind: "durable", Dir: dir, Queued: func(path string) {
			// Called before the 250 is written: the file must be in q/
			// already, with the whole message.
			if filepath.Dir(path) != filepath.Join(dir, "q") {
				t.Errorf("queued %s, not in q/", path)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("the queued file cannot be read before the 250: %v", err)
			}
			mu.Lock()
			seen = append(seen, b)
			mu.Unlock()
		}})
		msg := message(large)
		for range 2 {
			if err := smtp.SendMail(addr, nil, "printer@company.com", []string{"alice@company.com"}, msg); err != nil {
				t.Fatalf("net/smtp SendMail: %v", err)
			}
		}
		mu.Lock()
		if len(seen) != 2 {
			t.Fatalf("%d messages queued before their 250, want 2", len(seen))
		}
		for _, b := range seen {
			if !bytes.Equal(b, msg) {
				t.Errorf("queued file holds %d bytes, not the %d sent:\n%.200q", len(b), len(msg), b)
			}
		}
		mu.Unlock()
		// SendMail has read the 221 to its QUIT, which go-smtp writes
		// after the transaction's Reset, so the files are gone.
		for _, sub := range []string{"q", "tmp"} {
			left, err := os.ReadDir(filepath.Join(dir, sub))
			if err != nil || len(left) != 0 {
				t.Errorf("%s/ after the transactions: %v %v, want empty", sub, left, err)
			}
		}
	}
}

func TestUnknownKind(t *testing.T) {
	if _, err := New(Options{Kind: "fast"}); err == nil {
		t.Fatal("New accepted an unknown kind")
	}
	if _, err := New(Options{Kind: "durable"}); err == nil {
		t.Fatal("New made a durable server without a directory")
	}
}
