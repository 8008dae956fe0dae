package datanode

import (
	"testing"
	"time"
)

func TestBreakerStates(t *testing.T) {
	b := newBreaker(3, 50*time.Millisecond)
	want := func(state string, allowed bool) {
		t.Helper()
		got := b.allow()
		if s := b.snapshot("p").State; s != state || got != allowed {
			t.Fatalf("state %s allow %t; want %s %t", s, got, state, allowed)
		}
	}
	b.record(true)
	b.record(true)
	want(breakerClosed, true) // two failures: still closed
	b.record(true)
	want(breakerOpen, false) // the third opens it; calls fail fast
	time.Sleep(60 * time.Millisecond)
	want(breakerHalfOpen, true) // after the cool-down, one probe
	if b.allow() {
		t.Fatal("a second call went through while the probe was out")
	}
	b.record(true) // the probe failed: open again
	want(breakerOpen, false)
	time.Sleep(60 * time.Millisecond)
	want(breakerHalfOpen, true)
	b.record(false) // the probe got an answer: closed
	want(breakerClosed, true)
	if s := b.snapshot("p"); s.Failures != 0 {
		t.Fatalf("failures after success: %d; want 0", s.Failures)
	}
}

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		d := backoff(20*time.Millisecond, 3)
		if d < 0 || d > 80*time.Millisecond {
			t.Fatalf("backoff(20ms, 3) = %s; want within [0, 80ms]", d)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Fatalf("backoff took %d distinct values in 200 draws; want jitter", len(seen))
	}
}
