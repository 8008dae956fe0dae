// Package budget bounds the bytes of request bodies a node holds in memory
// at once.
//
// A Budget is a counter, not a lock: a reservation that would pass the
// maximum is refused at once rather than queued, so a slow client cannot
// make others wait behind it, and the refused caller answers "busy" (429)
// and retries later. Bodies that are spooled to a file take nothing: the
// budget is about the heap, not the disk.
//
//	b := budget.New(64<<20, api.ErrBusy)
//	held, err := b.ReserveBody(size, inMemory)
//	if err != nil {
//		return err // errors.Is(err, api.ErrBusy)
//	}
//	defer b.Release(held)
//
// # Caveats
//
// Every successful reservation must be released exactly once, with the
// amount it returned: a missed Release shrinks the budget for good, a
// double one lets it overflow.
package budget

import (
	"fmt"
	"sync/atomic"
)

// Budget counts the bytes reserved against a maximum. The zero value is
// not usable: build one with New.
type Budget struct {
	max  int64
	used atomic.Int64
	full error
}

// New returns a budget of max bytes whose refusals wrap full, so the
// caller decides how a refusal is answered (a node passes api.ErrBusy,
// which its HTTP layer turns into 429).
func New(max int64, full error) *Budget {
	return &Budget{max: max, full: full}
}

// Reserve takes n bytes or fails with an error wrapping the budget's full
// error.
func (b *Budget) Reserve(n int64) error {
	if n <= 0 {
		return nil
	}
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return fmt.Errorf("%w: %d bytes of bodies in memory, the limit is %d", b.full, b.used.Load(), b.max)
	}
	return nil
}

// Release gives n bytes back.
func (b *Budget) Release(n int64) {
	if n > 0 {
		b.used.Add(-n)
	}
}

// ReserveBody reserves the memory a request body of declared length size
// will take: all of it when it is at most inMemory bytes, or max when its
// length is unknown and it is read whole; spooled bodies take nothing. It
// returns the amount to release.
func (b *Budget) ReserveBody(size, inMemory int64) (int64, error) {
	switch {
	case size < 0 || size > inMemory:
		return 0, nil
	}
	return size, b.Reserve(size)
}

// Used is the number of bytes reserved now.
func (b *Budget) Used() int64 { return b.used.Load() }

// Max is the budget's maximum in bytes.
func (b *Budget) Max() int64 { return b.max }
