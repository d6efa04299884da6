package groupsync

import (
	"sync"
	"testing"
	"time"
)

// TestCoalesces checks the group commit: concurrent callers
// share fsyncs, and each returns only after an fsync that began after its
// call.
func TestCoalesces(t *testing.T) {
	var mu sync.Mutex
	var runs []struct{ start, end time.Time }
	g := New(func() error {
		start := time.Now()
		time.Sleep(10 * time.Millisecond)
		mu.Lock()
		runs = append(runs, struct{ start, end time.Time }{start, time.Now()})
		mu.Unlock()
		return nil
	})
	const callers = 40
	var wg sync.WaitGroup
	type span struct{ called, returned time.Time }
	spans := make([]span, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spans[i].called = time.Now()
			if err := g.Sync(); err != nil {
				t.Error(err)
			}
			spans[i].returned = time.Now()
		}()
	}
	wg.Wait()
	if len(runs) >= callers/2 {
		t.Errorf("%d fsyncs for %d concurrent callers; they are not shared", len(runs), callers)
	}
	for i, s := range spans {
		covered := false
		for _, r := range runs {
			if !r.start.Before(s.called) && !r.end.After(s.returned) {
				covered = true
			}
		}
		if !covered {
			t.Errorf("caller %d returned without an fsync that began after its call", i)
		}
	}
}

// TestShares: callers that arrive while an fsync runs wait for
// it and then share one more, which began after their calls.
func TestShares(t *testing.T) {
	release := make(chan struct{})
	var calls []int
	var mu sync.Mutex
	n := 0
	g := New(func() error {
		mu.Lock()
		n++
		calls = append(calls, n)
		first := n == 1
		mu.Unlock()
		if first {
			<-release
		}
		return nil
	})
	firstDone := make(chan error)
	go func() { firstDone <- g.Sync() }()
	// Wait until the first fsync is running, then queue three more callers.
	for {
		g.mu.Lock()
		running := g.running
		g.mu.Unlock()
		if running {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Sync(); err != nil {
				t.Error(err)
			}
		}()
	}
	for {
		g.mu.Lock()
		w := g.waiting
		g.mu.Unlock()
		if w == 3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n != 2 {
		t.Fatalf("%d fsyncs for four callers, three of them waiting on the first: want 2 (%v)", n, calls)
	}
	if err := g.Sync(); err != nil || n != 3 {
		t.Fatalf("a caller after the others got %v with %d fsyncs, want its own (3)", err, n)
	}
}
