package datanode

import (
	"fmt"
	"sync/atomic"

	"github.com/stratum-store/stratum/api"
)

// memBudget bounds the bytes of request bodies held in memory. It is a
// counter, not a lock: a reservation that would pass the maximum is refused
// at once (429 busy) rather than queued, so a slow client cannot make others
// wait behind it.
type memBudget struct {
	max  int64
	used atomic.Int64
}

// reserve takes n bytes or fails with api.ErrBusy.
func (b *memBudget) reserve(n int64) error {
	if n <= 0 {
		return nil
	}
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return fmt.Errorf("%w: %d bytes of bodies in memory, the limit is %d", api.ErrBusy, b.used.Load(), b.max)
	}
	return nil
}

// release gives n bytes back.
func (b *memBudget) release(n int64) {
	if n > 0 {
		b.used.Add(-n)
	}
}

// reserveBody reserves the memory a request body of declared length size
// will take: all of it when it is at most inMemory bytes, or max when its
// length is unknown and it is read whole; spooled bodies take nothing. It
// returns the amount to release.
func (b *memBudget) reserveBody(size, inMemory int64) (int64, error) {
	switch {
	case size < 0 || size > inMemory:
		return 0, nil
	}
	return size, b.reserve(size)
}
