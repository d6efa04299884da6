package benchkit

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestStartFloor builds the floor server as the benchmark does, runs
// each kind as a child process, relays a message through it and stops
// it with SIGTERM.
func TestStartFloor(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the benchmark runs on Linux only")
	}
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin, err := BuildPackage(t.TempDir(), FloorPackage, "floorserver")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"bare", "durable"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			d, err := StartFloor(bin, kind, dir)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Dial(d.Addr, 30*time.Second)
			if err != nil {
				d.Stop()
				t.Fatal(err)
			}
			r, err := c.Send("printer@company.com", []string{"alice@company.com"}, strings.NewReader("Subject: floor\r\n\r\nhello\r\n"))
			c.Quit()
			if err != nil || r.Code != 250 {
				t.Errorf("Send: %d %q %v", r.Code, r.Text, err)
			}
			if err := d.Stop(); err != nil {
				t.Errorf("the floor server did not exit cleanly on SIGTERM: %v\n%s", err, d.LogTail(8))
			}
			if kind == "durable" {
				// The message went through q/ and was removed after its 250.
				left, err := os.ReadDir(filepath.Join(dir, "q"))
				if err != nil || len(left) != 0 {
					t.Errorf("q/ after the transaction: %v %v, want an empty directory", left, err)
				}
			}
		})
	}
}
