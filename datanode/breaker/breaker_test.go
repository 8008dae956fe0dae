package breaker

import (
	"testing"
	"time"
)

func TestBreakerStates(t *testing.T) {
	b := New(3, 50*time.Millisecond)
	want := func(state string, allowed bool) {
		t.Helper()
		got := b.Allow()
		if s := b.Snapshot().State; s != state || got != allowed {
			t.Fatalf("state %s allow %t; want %s %t", s, got, state, allowed)
		}
	}
	b.Record(true)
	b.Record(true)
	want(Closed, true) // two failures: still closed
	b.Record(true)
	want(Open, false) // the third opens it; calls fail fast
	time.Sleep(60 * time.Millisecond)
	want(HalfOpen, true) // after the cool-down, one probe
	if b.Allow() {
		t.Fatal("a second call went through while the probe was out")
	}
	b.Record(true) // the probe failed: open again
	want(Open, false)
	time.Sleep(60 * time.Millisecond)
	want(HalfOpen, true)
	b.Record(false) // the probe got an answer: closed
	want(Closed, true)
	if s := b.Snapshot(); s.Failures != 0 {
		t.Fatalf("failures after success: %d; want 0", s.Failures)
	}
}
