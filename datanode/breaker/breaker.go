// Package breaker holds the circuit breaker a node keeps for its calls
// to one peer.
//
// A breaker watches transport failures only: a peer that answers, even
// with an error reply, is reachable, and retrying it harder would not
// help. After Threshold transport failures in a row the breaker opens and
// calls fail fast, without waiting for a timeout each; once the cool-down
// has passed it lets exactly one probe through (half-open), and the
// probe's outcome closes or reopens it. So a dead peer costs one timeout
// per cool-down, not one per request.
//
// # Caveats
//
// Record must follow every call Allow let through, or a half-open breaker
// waits for its probe forever. The package reads the wall clock
// (time.Since): it is a leaf helper, not a pure function.
package breaker

import (
	"sync"
	"time"
)

// Breaker states, as Snapshot reports them (and the status page and the
// stratum_peer_breaker_state metric show them).
const (
	Closed   = "closed"
	Open     = "open"
	HalfOpen = "half-open"
)

// Breaker is one peer's circuit breaker. It opens after threshold
// consecutive transport failures, fails calls fast while open, lets a single
// probe through once cooldown has passed (half-open), and closes when a call
// succeeds. Its mutex is taken alone, never with another lock.
type Breaker struct {
	threshold int
	cooldown  time.Duration

	mu       sync.Mutex
	state    string
	failures int
	openedAt time.Time
	probing  bool
}

// New returns a closed breaker that opens after threshold transport
// failures in a row and probes again after cooldown.
func New(threshold int, cooldown time.Duration) *Breaker {
	return &Breaker{threshold: threshold, cooldown: cooldown, state: Closed}
}

// Allow reports whether a call may go out now.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Open:
		if time.Since(b.openedAt) < b.cooldown {
			return false
		}
		b.state, b.probing = HalfOpen, true
		return true
	case HalfOpen:
		if b.probing {
			return false
		}
		b.probing = true
	}
	return true
}

// Record notes a call's outcome: transportFailed means no answer at all
// (refused, reset, timed out); any answer, even an error reply, is success.
func (b *Breaker) Record(transportFailed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if !transportFailed {
		b.state, b.failures = Closed, 0
		return
	}
	b.failures++
	if b.state == HalfOpen || b.failures >= b.threshold {
		b.state, b.openedAt = Open, time.Now()
	}
}

// Snapshot is a breaker's state at one moment.
type Snapshot struct {
	State    string // Closed, Open or HalfOpen
	Failures int    // transport failures in a row
}

// Snapshot returns the breaker's current state.
func (b *Breaker) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Snapshot{State: b.state, Failures: b.failures}
}
