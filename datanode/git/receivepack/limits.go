package receivepack

import (
	"fmt"

	"github.com/stratum-store/stratum/api"
)

// Limits bound what one push may send and how it is stored. The zero value
// of a field means its default, documented on the field.
type Limits struct {
	// MaxPackBytes is the largest pack accepted, in bytes; a larger one is
	// refused with `unpack pack over N bytes`. If zero, 512 MiB.
	MaxPackBytes int64
	// MaxObjects is the largest object count a pack may hold. If zero,
	// 2 million (about 500 MB of bookkeeping while the push is checked).
	MaxObjects uint32
	// MaxObjectSize is the largest object, inflated. If zero, 512 MiB.
	MaxObjectSize int64
	// MaxCommands is the most ref updates of one push. If zero, and at
	// most, api.MaxRefUpdates (1000): the ref transaction's own bound.
	MaxCommands int
	// MaxPushOptions is the most push options, each at most one pkt-line.
	// If zero, 100.
	MaxPushOptions int
	// BatchObjects and BatchBytes bound one Backend.Put or Backend.Has call.
	// If zero, 1000 objects and 16 MiB.
	BatchObjects int
	BatchBytes   int64
	// PutConcurrency is how many Put batches may be in flight at once; it
	// bounds the memory of storing to about PutConcurrency x BatchBytes.
	// If zero, 4.
	PutConcurrency int
	// CacheBytes bounds the pack reader's cache of delta bases. If zero,
	// 64 MiB.
	CacheBytes int64
	// KeepCloneMinObjects is the fewest objects a self-contained pushed
	// pack must hold to be kept for serving clones (package clonepack):
	// smaller packs are generated in milliseconds. If zero, 1000; negative
	// keeps none.
	KeepCloneMinObjects int
	// TempDir holds the pack and its objects while they are verified. If
	// blank, os.TempDir().
	TempDir string
}

// DefaultLimits returns the defaults documented on Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxPackBytes: 512 << 20, MaxObjects: 2_000_000, MaxObjectSize: 512 << 20,
		MaxCommands: api.MaxRefUpdates, MaxPushOptions: 100,
		BatchObjects: 1000, BatchBytes: 16 << 20, PutConcurrency: 4, CacheBytes: 64 << 20,
		KeepCloneMinObjects: 1000,
	}
}

// Validate refuses negative limits and more commands than one ref
// transaction may carry.
func (l Limits) Validate() error {
	switch {
	case l.MaxPackBytes < 0:
		return fmt.Errorf("receivepack: Limits.MaxPackBytes %d: must be >= 0", l.MaxPackBytes)
	case l.MaxObjectSize < 0:
		return fmt.Errorf("receivepack: Limits.MaxObjectSize %d: must be >= 0", l.MaxObjectSize)
	case l.MaxCommands < 0 || l.MaxCommands > api.MaxRefUpdates:
		return fmt.Errorf("receivepack: Limits.MaxCommands %d: must be 0 to %d", l.MaxCommands, api.MaxRefUpdates)
	case l.MaxPushOptions < 0:
		return fmt.Errorf("receivepack: Limits.MaxPushOptions %d: must be >= 0", l.MaxPushOptions)
	case l.BatchObjects < 0 || l.BatchBytes < 0 || l.PutConcurrency < 0:
		return fmt.Errorf("receivepack: Limits.BatchObjects %d, BatchBytes %d, PutConcurrency %d: must be >= 0",
			l.BatchObjects, l.BatchBytes, l.PutConcurrency)
	case l.CacheBytes < 0:
		return fmt.Errorf("receivepack: Limits.CacheBytes %d: must be >= 0", l.CacheBytes)
	}
	return nil
}

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	fill := func(v *int64, def int64) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&l.MaxPackBytes, d.MaxPackBytes)
	fill(&l.MaxObjectSize, d.MaxObjectSize)
	fill(&l.BatchBytes, d.BatchBytes)
	fill(&l.CacheBytes, d.CacheBytes)
	if l.MaxObjects == 0 {
		l.MaxObjects = d.MaxObjects
	}
	if l.MaxCommands == 0 {
		l.MaxCommands = d.MaxCommands
	}
	if l.MaxPushOptions == 0 {
		l.MaxPushOptions = d.MaxPushOptions
	}
	if l.BatchObjects == 0 {
		l.BatchObjects = d.BatchObjects
	}
	if l.KeepCloneMinObjects == 0 {
		l.KeepCloneMinObjects = d.KeepCloneMinObjects
	}
	if l.PutConcurrency == 0 {
		l.PutConcurrency = d.PutConcurrency
	}
	return l
}
