package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stratum-store/stratum/api/objid"
)

func batchItems(n int, prefix string) []BatchItem {
	var items []BatchItem
	for i := 0; i < n; i++ {
		data := []byte(fmt.Sprintf("%s %d", prefix, i))
		oid, _ := objid.Digest(objid.SHA256, data)
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
	items = append(items, items[3])                                 // a duplicate within the batch
	items = append(items, BatchItem{Data: []byte("no oid at all")}) // the zero OID
	// A Value alone is decoded here and always hashed, whatever the
	// sender claims: Verified vouches only for a caller's own Data.
	liar := BatchItem{OID: items[8].OID, Value: s.Encode([]byte("other bytes")), Verified: true}
	items = append(items, liar)
	res, err := s.PutBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	created := 0
	for i, r := range res {
		switch {
		case i == 7:
			if !errors.Is(r.Err, objid.ErrDigestMismatch) {
				t.Fatalf("item 7 (bad bytes): %v; want digest mismatch", r.Err)
			}
		case i == len(items)-1:
			if !errors.Is(r.Err, objid.ErrDigestMismatch) {
				t.Fatalf("a Value alone marked Verified, with other bytes: %v; want digest mismatch", r.Err)
			}
		case i == len(items)-2:
			if !errors.Is(r.Err, objid.ErrInvalid) {
				t.Fatalf("the zero OID: %v; want invalid", r.Err)
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
	has, err := s.HasMany(context.Background(), []objid.OID{items[0].OID, items[7].OID, items[49].OID})
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
	createdBy := map[objid.OID]int{}
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
			oid, _ := objid.Digest(objid.SHA256, data)
			items = append(items, BatchItem{OID: oid, Data: data})
		}
		if _, err := s.PutBatch(context.Background(), items); err != nil {
			b.Fatal(err)
		}
	}
}

// A batch that lists one OID more than once applies its items in order,
// as that many puts one after the other: an item is acknowledged only if
// the object is stored with at least its stamp afterwards, whatever an
// earlier item of the same OID did (issue 15.4).
func TestPutBatchDuplicatesAreAppliedInOrder(t *testing.T) {
	type want struct {
		created bool
		err     error
	}
	data := []byte("one object listed twice")
	oid := mustOID(t, objid.SHA256, data)
	const (
		absent = iota
		present
		deleted
	)
	f := func(name string, before int, beforeStamp objid.Stamp, items []BatchItem, wants []want, afterDeleted bool, afterStamp objid.Stamp) {
		t.Run(name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			s := mustOpen(t, cfg)
			switch before {
			case present:
				if _, err := s.PutStamped(ctx, oid, data, beforeStamp); err != nil {
					t.Fatal(err)
				}
			case deleted:
				if _, err := s.Delete(ctx, oid, beforeStamp, 1); err != nil {
					t.Fatal(err)
				}
			}
			res, err := s.PutBatch(ctx, items)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range wants {
				if !errors.Is(res[i].Err, w.err) || (w.err == nil && res[i].Err != nil) || res[i].Created != w.created {
					t.Fatalf("item %d (stamp %d): created %t, err %v; want created %t, err %v", i, items[i].Stamp, res[i].Created, res[i].Err, w.created, w.err)
				}
			}
			e, err := s.Meta(ctx, oid)
			if err != nil || e.Deleted != afterDeleted || e.Stamp != afterStamp {
				t.Fatalf("after the batch: %+v, %v; want deleted %t, stamp %d", e, err, afterDeleted, afterStamp)
			}
			if _, gerr := s.Get(ctx, oid); afterDeleted != (gerr != nil) {
				t.Fatalf("Get after the batch: %v; want deleted %t", gerr, afterDeleted)
			}
			if wantObjects := map[bool]int64{true: 0, false: 1}[afterDeleted]; s.Stats().Objects != wantObjects {
				t.Fatalf("objects after the batch: %d; want %d", s.Stats().Objects, wantObjects)
			}
		})
	}
	it := func(stamp objid.Stamp) BatchItem { return BatchItem{OID: oid, Data: data, Stamp: stamp} }
	bad := BatchItem{OID: oid, Data: []byte("not what the oid says"), Stamp: 50}
	ok, made, superseded := want{}, want{created: true}, want{err: ErrSuperseded}
	f("first superseded by the tombstone, second newer", deleted, 10, []BatchItem{it(5), it(20)}, []want{superseded, made}, false, 20)
	f("both superseded", deleted, 10, []BatchItem{it(5), it(7)}, []want{superseded, superseded}, true, 10)
	f("first stores over the tombstone, second older", deleted, 10, []BatchItem{it(20), it(5)}, []want{made, ok}, false, 20)
	f("a present copy: the second raises the stamp", present, 5, []BatchItem{it(3), it(20)}, []want{ok, ok}, false, 20)
	f("a present copy: neither lowers its stamp", present, 30, []BatchItem{it(3), it(10)}, []want{ok, ok}, false, 30)
	f("absent: the newer second raises the stamp", absent, 0, []BatchItem{it(5), it(20)}, []want{made, ok}, false, 20)
	f("absent: the older second keeps it", absent, 0, []BatchItem{it(20), it(5)}, []want{made, ok}, false, 20)
	f("a bad first item does not hide the second", absent, 0, []BatchItem{bad, it(7)}, []want{{err: objid.ErrDigestMismatch}, made}, false, 7)
	f("three times over a tombstone", deleted, 10, []BatchItem{it(5), it(12), it(11)}, []want{superseded, made, ok}, false, 12)
}
