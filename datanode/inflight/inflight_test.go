package inflight

import (
	"sync/atomic"
	"testing"
)

// Stop waits for every call Add counted and refuses new ones.
func TestStopWaitsAndRefuses(t *testing.T) {
	var g Group
	var done atomic.Int32
	release := make(chan struct{})
	for range 3 {
		if !g.Add() {
			t.Fatal("Add refused before Stop")
		}
		go func() { <-release; done.Add(1); g.Done() }()
	}
	stopped := make(chan struct{})
	go func() { g.Stop(); close(stopped) }()
	close(release)
	<-stopped
	if got := done.Load(); got != 3 {
		t.Fatalf("Stop returned with %d of 3 calls done", got)
	}
	if g.Add() {
		t.Fatal("Add succeeded after Stop")
	}
}
