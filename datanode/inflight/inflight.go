// Package inflight counts a node's background calls that outlive the
// request that started them (replica calls still running after a quorum
// answered, read repairs, hinted deletes), so that Close can stop new
// ones and wait for those running, each bounded by its own deadline.
//
//	if !g.Add() {
//		return // the node is closing: start nothing
//	}
//	go func() { defer g.Done(); call() }()
//	...
//	g.Stop() // in Close: no Add succeeds from here; waits for the running
//
// It is a sync.WaitGroup whose Add cannot race its Wait: after Stop began,
// Add reports false instead of adding.
package inflight

import "sync"

// Group counts running calls. The zero value is ready to use; it must not
// be copied after first use.
type Group struct {
	mu      sync.Mutex // guards stopped; held only around wg.Add
	stopped bool
	wg      sync.WaitGroup
}

// Add counts one more call, or reports false once Stop has begun.
func (g *Group) Add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.wg.Add(1)
	return true
}

// Done ends one call Add counted.
func (g *Group) Done() { g.wg.Done() }

// Stop refuses new calls and waits for the running ones.
func (g *Group) Stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.wg.Wait()
}
