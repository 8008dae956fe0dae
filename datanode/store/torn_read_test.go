package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stratum-store/stratum/api/objid"
)

// A read racing puts and deletes of one object must see the tombstone or
// the copy, never neither: a put over a tombstone and a delete of a copy
// each swap one for the other in one batch, and a read of the copy then of
// the tombstone, one after the other, could straddle such a batch and find
// neither ("not found"). Small and large objects, Get and Meta. (Found by
// TestStoreModelPowerLoss's bursts: a get answered "not found" while a put
// replaced a tombstone.)
func TestReadsNeverFallBetweenTombstoneAndCopy(t *testing.T) {
	for _, cache := range []int{-1, 0} { // every read goes to the index; the default cache
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) { readsNeverFall(t, cache) })
	}
}

func readsNeverFall(t *testing.T, cache int) {
	cfg, _ := testConfig(t)
	cfg.LargeThreshold = 2 << 10
	cfg.EntryCache = cache
	s := mustOpen(t, cfg)
	for _, size := range []int{500, 5000} {
		data := randomBytes(uint64(4000+size), size)
		oid := mustOID(t, objid.SHA256, data)
		if _, err := s.PutStamped(ctx, oid, data, 1); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			defer close(stop)
			for i := range 400 {
				stamp := objid.Stamp(2*i + 2)
				if _, err := s.Delete(ctx, oid, stamp, int64(i)); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.PutStamped(ctx, oid, data, stamp+1); err != nil {
					t.Error(err)
					return
				}
			}
		})
		var reads, neither atomic.Int64
		for _, read := range []func() error{
			func() error { _, err := s.Get(ctx, oid); return err },
			func() error { _, err := s.Meta(ctx, oid); return err },
		} {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					err := read()
					reads.Add(1)
					switch {
					case err == nil, errors.Is(err, ErrDeleted): // ErrDeleted also matches ErrNotFound
					case errors.Is(err, ErrNotFound):
						neither.Add(1)
					default:
						t.Errorf("read: %v", err)
					}
				}
			})
		}
		wg.Wait()
		if neither.Load() > 0 {
			t.Fatalf("%d-byte object: %d of %d reads found neither the copy nor the tombstone", size, neither.Load(), reads.Load())
		}
	}
}
