package datanode

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/stratum-store/stratum/api"
)

// Breaker states.
const (
	breakerClosed   = "closed"
	breakerOpen     = "open"
	breakerHalfOpen = "half-open"
)

// breaker is one peer's circuit breaker. It opens after threshold
// consecutive transport failures, fails calls fast while open, lets a single
// probe through once cooldown has passed (half-open), and closes when a call
// succeeds. Its mutex is taken alone, never with another lock.
type breaker struct {
	threshold int
	cooldown  time.Duration

	mu       sync.Mutex
	state    string
	failures int
	openedAt time.Time
	probing  bool
}

func newBreaker(threshold int, cooldown time.Duration) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, state: breakerClosed}
}

// allow reports whether a call may go out now.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerOpen:
		if time.Since(b.openedAt) < b.cooldown {
			return false
		}
		b.state, b.probing = breakerHalfOpen, true
		return true
	case breakerHalfOpen:
		if b.probing {
			return false
		}
		b.probing = true
	}
	return true
}

// record notes a call's outcome: transportFailed means no answer at all
// (refused, reset, timed out); any answer, even an error reply, is success.
func (b *breaker) record(transportFailed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if !transportFailed {
		b.state, b.failures = breakerClosed, 0
		return
	}
	b.failures++
	if b.state == breakerHalfOpen || b.failures >= b.threshold {
		b.state, b.openedAt = breakerOpen, time.Now()
	}
}

func (b *breaker) snapshot(peer string) api.BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return api.BreakerState{Peer: peer, State: b.state, Failures: b.failures}
}

// backoff is the wait before retry attempt (1, 2, ...): exponential from
// base with full jitter.
func backoff(base time.Duration, attempt int) time.Duration {
	max := base << (attempt - 1)
	return time.Duration(rand.Int64N(int64(max) + 1))
}
