package retry

import (
	"context"
	"testing"
	"time"
)

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		d := Backoff(20*time.Millisecond, 3)
		if d < 0 || d > 80*time.Millisecond {
			t.Fatalf("Backoff(20ms, 3) = %s; want within [0, 80ms]", d)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Fatalf("Backoff took %d distinct values in 200 draws; want jitter", len(seen))
	}
}

func TestSleepEndsWhenTheContextIsDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	Sleep(ctx, time.Minute)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Sleep(done ctx, 1m) took %s; want it to return at once", took)
	}
	start = time.Now()
	Sleep(context.Background(), 20*time.Millisecond)
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Fatalf("Sleep(20ms) returned after %s; want at least 20ms", took)
	}
}
