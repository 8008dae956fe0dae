// Package retry holds the two waits of a retry loop: Sleep, a pause that
// ends early when the caller gives up, and Backoff, the jittered wait
// before the next attempt. The servers' watch, lease and peer-call loops
// share them, so each loop says how long it waits, not how to wait.
//
//	for attempt := 1; ctx.Err() == nil; attempt++ {
//		if err := try(ctx); err == nil {
//			return nil
//		}
//		retry.Sleep(ctx, retry.Backoff(100*time.Millisecond, min(attempt, 6)))
//	}
//
// # Caveats
//
// Sleep returns nothing: a loop must check ctx.Err() itself after it, or
// it spins once ctx is done. Backoff's attempt starts at 1 and doubles the
// bound each time: cap the attempt, or the bound overflows near 63.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep waits for d or until ctx is done, whichever comes first.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Backoff is the wait before retry attempt (1, 2, ...): exponential from
// base with full jitter, so callers that failed together do not retry
// together.
func Backoff(base time.Duration, attempt int) time.Duration {
	max := base << (attempt - 1)
	return time.Duration(rand.Int64N(int64(max) + 1))
}

// Every calls fn each d (the first time after d) until ctx is done; a
// call that runs long delays the next one (ticks do not pile up).
func Every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}
