package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stratum-store/stratum/api"
)

func batchItems(n int, prefix string) []BatchItem {
	var items []BatchItem
	for i := 0; i < n; i++ {
		data := []byte(fmt.Sprintf("%s %d", prefix, i))
		oid, _ := api.Digest(api.SHA256, data)
		items = append(items, BatchItem{OID: oid, Data: data})
	}
	return items
}

func TestPutBatch(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	items := batchItems(50, "batch")
	items[7].Data = []byte("not what the oid says")
	items = append(items, items[3]) // a duplicate within the batch
	res, err := s.PutBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	created := 0
	for i, r := range res {
		switch {
		case i == 7:
			if !errors.Is(r.Err, api.ErrDigestMismatch) {
				t.Fatalf("item 7 (bad bytes): %v; want digest mismatch", r.Err)
			}
		case r.Err != nil:
			t.Fatalf("item %d: %v", i, r.Err)
		case r.Created:
			created++
		}
	}
	if created != 49 || s.Stats().Objects != 49 {
		t.Fatalf("created %d, stats %d; want 49 and 49 (one bad, one duplicate)", created, s.Stats().Objects)
	}
	again, _ := s.PutBatch(context.Background(), items[:5])
	for _, r := range again {
		if r.Created || r.Err != nil {
			t.Fatalf("second batch: %+v; want already present", r)
		}
	}
	s.Close()
	s, _ = Open(DefaultConfig(dir))
	defer s.Close()
	has, err := s.HasMany(context.Background(), []api.OID{items[0].OID, items[7].OID, items[49].OID})
	if err != nil || !has[0] || has[1] || !has[2] {
		t.Fatalf("HasMany after reopen: %v %v; want [true false true]", has, err)
	}
}

// Concurrent overlapping batches and single puts neither deadlock nor
// report one object created twice.
func TestPutBatchConcurrent(t *testing.T) {
	s, err := Open(DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	items := batchItems(200, "overlap")
	var mu sync.Mutex
	createdBy := map[api.OID]int{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := append([]BatchItem{}, items[w*15:w*15+80]...)
			res, err := s.PutBatch(context.Background(), mine)
			if err != nil {
				t.Error(err)
				return
			}
			c, _ := s.Put(context.Background(), items[w].OID, items[w].Data)
			mu.Lock()
			defer mu.Unlock()
			if c {
				createdBy[items[w].OID]++
			}
			for i, r := range res {
				if r.Created {
					createdBy[mine[i].OID]++
				}
			}
		}()
	}
	wg.Wait()
	for oid, n := range createdBy {
		if n != 1 {
			t.Fatalf("%s reported created %d times; want once", oid, n)
		}
	}
}

func BenchmarkPutBatch1KiB(b *testing.B) {
	s, err := Open(DefaultConfig(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetBytes(100 << 10)
	for i := 0; b.Loop(); i++ {
		var items []BatchItem
		for j := 0; j < 100; j++ {
			data := make([]byte, 1024)
			copy(data, fmt.Sprintf("%d-%d", i, j))
			oid, _ := api.Digest(api.SHA256, data)
			items = append(items, BatchItem{OID: oid, Data: data})
		}
		if _, err := s.PutBatch(context.Background(), items); err != nil {
			b.Fatal(err)
		}
	}
}
