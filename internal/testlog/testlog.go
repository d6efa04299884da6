// Package testlog gives each test its own daemon log and, when the test
// fails, shows only the log's last lines plus the path of a file holding
// all of it.
//
// A daemon under test logs thousands of lines; printed whole, the log of
// one failing end-to-end test once buried its failure under 27,000 lines.
// Each test therefore gets its own Log, never a shared or default logger,
// so that what a failure shows belongs to that test.
package testlog

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TailLines is how many of the last log lines a failure shows.
const TailLines = 50

// Log is one test's log. It is safe for concurrent writers.
//
// Formatted with %s or %v, a Log prints its last TailLines lines and the
// path of a file holding the whole log, so that a failure message quoting
// it stays short; String returns all of it, for tests that search the log.
type Log struct {
	t    testing.TB
	mu   sync.Mutex
	b    bytes.Buffer
	path string // the file the whole log was written to, once it was
}

// New returns an empty Log for t. If t fails, the Log's tail and the path of
// the whole log are printed when t ends.
func New(t testing.TB, label string) *Log {
	l := &Log{t: t}
	t.Cleanup(func() {
		if t.Failed() && l.len() > 0 {
			t.Logf("%s: %v", label, l)
		}
	})
	return l
}

// Logger returns a text logger at debug level writing to l.
func (l *Log) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns the whole log.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *Log) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// Format prints the log's tail: the whole log when it is short, otherwise
// its last TailLines lines after the path of a file holding all of it.
func (l *Log) Format(f fmt.State, verb rune) {
	fmt.Fprint(f, l.Tail())
}

// Tail returns the log's last TailLines lines; when there are more, it
// first writes the whole log to a file and names it.
func (l *Log) Tail() string {
	all := l.String()
	lines := strings.SplitAfter(strings.TrimSuffix(all, "\n"), "\n")
	if len(lines) <= TailLines {
		return "\n" + all
	}
	head := fmt.Sprintf("\n(last %d of %d lines; whole log: %s)\n", TailLines, len(lines), l.save(all))
	return head + strings.Join(lines[len(lines)-TailLines:], "") + "\n"
}

// save writes the whole log to a file that outlives the test (its TempDir
// does not) and returns the file's path, or why it could not be written.
func (l *Log) save(all string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.path == "" {
		dir := filepath.Join(os.TempDir(), "graphrelay-test-logs")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Sprintf("not saved: %v", err)
		}
		name := strings.NewReplacer("/", "_", " ", "_", "\\", "_", ":", "_").Replace(l.t.Name())
		f, err := os.CreateTemp(dir, name+"-*.log")
		if err != nil {
			return fmt.Sprintf("not saved: %v", err)
		}
		f.Close()
		l.path = f.Name()
	}
	if err := os.WriteFile(l.path, []byte(all), 0o600); err != nil {
		return fmt.Sprintf("not saved: %v", err)
	}
	return l.path
}
