// Command floorserver runs one of the benchmark's floor servers (package
// floor) as a process of its own, so that the benchmark reads its CPU and
// system calls from /proc, perf and strace exactly as it reads the
// daemon's. The benchmark builds and starts it; it is not for operators:
//
//	floorserver -kind durable -addr 127.0.0.1:2526 -dir /tmp/floor
//
// It serves until SIGTERM or SIGINT.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/emersion/go-smtp"

	"github.com/graphrelay/graphrelay/bench/internal/floor"
)

func main() {
	kind := flag.String("kind", "bare", "bare (discard every message) or durable (fsync each into a file before the 250)")
	addr := flag.String("addr", "127.0.0.1:2525", "address to listen on")
	dir := flag.String("dir", ".", "the durable server's directory (tmp/ and q/ are made in it)")
	flag.Parse()
	srv, err := floor.New(floor.Options{Kind: *kind, Dir: *dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "floorserver:", err)
		os.Exit(2)
	}
	ln, err := floor.Listen(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floorserver:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		srv.Close()
	}()
	fmt.Fprintf(os.Stderr, "floorserver: %s listening on %s\n", *kind, ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "floorserver:", err)
		os.Exit(1)
	}
}
