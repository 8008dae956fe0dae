package store

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/stratum-store/stratum/api/objid"
)

// The stamp rules of tombstone.go, step by step on one small and one large
// object: each step is an operation, its expected outcome and the state
// it leaves.
func TestDeleteAndStampRules(t *testing.T) {
	for _, size := range []int{100, 3 << 20} {
		cfg, _ := testConfig(t)
		s := mustOpen(t, cfg)
		data := randomBytes(uint64(size), size)
		oid := mustOID(t, objid.SHA256, data)
		ctx := context.Background()
		put := func(stamp objid.Stamp, wantCreated bool, wantErr error) {
			t.Helper()
			created, err := s.PutStamped(ctx, oid, data, stamp)
			if !errors.Is(err, wantErr) || (err == nil && created != wantCreated) {
				t.Fatalf("size %d: put stamp %d: created %v, err %v; want created %v, err %v", size, stamp, created, err, wantCreated, wantErr)
			}
		}
		del := func(stamp objid.Stamp, wantDeleted bool, wantErr error) {
			t.Helper()
			deleted, err := s.Delete(ctx, oid, stamp, 100)
			if !errors.Is(err, wantErr) || deleted != wantDeleted {
				t.Fatalf("size %d: delete stamp %d: deleted %v, err %v; want %v, %v", size, stamp, deleted, err, wantDeleted, wantErr)
			}
		}
		state := func(wantDeleted bool, wantStamp objid.Stamp, wantObjects int64) {
			t.Helper()
			e, err := s.Meta(ctx, oid)
			if err != nil || e.Deleted != wantDeleted || e.Stamp != wantStamp || s.Stats().Objects != wantObjects {
				t.Fatalf("size %d: meta %+v, %v, %d objects; want deleted %v, stamp %d, %d objects", size, e, err, s.Stats().Objects, wantDeleted, wantStamp, wantObjects)
			}
			_, gerr := s.Get(ctx, oid)
			if wantDeleted != errors.Is(gerr, ErrNotFound) {
				t.Fatalf("size %d: get after: %v; deleted %v", size, gerr, wantDeleted)
			}
			if _, serr := s.Stat(ctx, oid); wantDeleted != errors.Is(serr, ErrDeleted) {
				t.Fatalf("size %d: stat after: %v; deleted %v", size, serr, wantDeleted)
			}
		}
		put(5, true, nil)
		state(false, 5, 1)
		put(4, false, nil) // an older copy: nothing changes
		state(false, 5, 1)
		del(5, false, ErrSuperseded) // a tie with a copy: the copy's stamp is not lower
		state(false, 5, 1)
		del(7, true, nil)
		state(true, 7, 0)
		if _, err := os.Stat(s.paths.objectPath(oid)); !os.IsNotExist(err) {
			t.Fatalf("size %d: object file still there after delete: %v", size, err)
		}
		put(0, false, ErrSuperseded) // a repair copy of unknown age
		put(7, false, ErrSuperseded) // a tie goes to the delete
		del(6, false, nil)           // an older delete: the tombstone keeps 7
		state(true, 7, 0)
		put(9, true, nil) // a later write stores it again
		state(false, 9, 1)
		put(12, false, nil) // a duplicate write raises the stamp
		state(false, 12, 1)
		if got := mustGet(t, s, oid); string(got) != string(data) {
			t.Fatalf("size %d: bytes differ after re-put", size)
		}
		assertNoTempFiles(t, s)
	}
}

// A tombstone survives a reopen, and an object file left by a crash
// between the tombstone's write and the file's removal is removed at Open,
// not indexed again.
func TestTombstoneSurvivesReopenAndOrphanIsNotAdopted(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	data := randomBytes(7, 2<<20)
	oid := mustOID(t, objid.SHA256, data)
	ctx := context.Background()
	if _, err := s.PutStamped(ctx, oid, data, 1); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(s.paths.objectPath(oid))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, oid, 2, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.paths.objectPath(oid), file, 0o644); err != nil { // the crash's leftover
		t.Fatal(err)
	}
	s = mustOpen(t, cfg)
	if _, err := s.Get(ctx, oid); !errors.Is(err, ErrDeleted) {
		t.Fatalf("get after reopen: %v; want deleted", err)
	}
	if _, err := os.Stat(s.paths.objectPath(oid)); !os.IsNotExist(err) {
		t.Fatalf("orphan file of a deleted object still there: %v", err)
	}
	if got := s.Stats().Objects; got != 0 {
		t.Fatalf("%d objects counted; want 0", got)
	}
}

// ExpireTombstones removes only tombstones older than its bound; Remove
// drops a copy without leaving one; PutBatch follows the stamp rules per
// item.
func TestExpireRemoveAndBatchStamps(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	ctx := context.Background()
	var oids []objid.OID
	var items []BatchItem
	for i := range 4 {
		d := randomBytes(uint64(100+i), 500)
		oid := mustOID(t, objid.SHA1, d)
		oids = append(oids, oid)
		items = append(items, BatchItem{OID: oid, Data: d, Stamp: 10})
	}
	if _, err := s.PutBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	s.Delete(ctx, oids[0], 20, 1000) // old tombstone
	s.Delete(ctx, oids[1], 20, 5000) // young tombstone
	if err := s.Remove(ctx, oids[2]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireTombstones(ctx, 2000); n != 1 || err != nil {
		t.Fatalf("expired %d, %v; want 1", n, err)
	}
	f := func(oid objid.OID, wantErr error) {
		t.Helper()
		if _, err := s.Meta(ctx, oid); !errors.Is(err, wantErr) {
			t.Fatalf("meta %s: %v; want %v", oid, err, wantErr)
		}
	}
	f(oids[0], ErrNotFound) // tombstone expired: nothing
	f(oids[2], ErrNotFound) // removed: nothing, no tombstone
	if e, _ := s.Meta(ctx, oids[1]); !e.Deleted {
		t.Fatalf("young tombstone expired: %+v", e)
	}
	res, err := s.PutBatch(ctx, items) // stamp 10 again
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		created bool
		err     error
	}{{true, nil}, {false, ErrSuperseded}, {true, nil}, {false, nil}}
	for i, w := range want {
		if res[i].Created != w.created || !errors.Is(res[i].Err, w.err) {
			t.Fatalf("batch item %d: created %v, err %v; want %v, %v", i, res[i].Created, res[i].Err, w.created, w.err)
		}
	}
	var live, dead int
	s.RangeEntries(ctx, func(e Entry) bool {
		if e.Deleted {
			dead++
		} else {
			live++
		}
		return true
	})
	if live != 3 || dead != 1 || s.Stats().Objects != 3 {
		t.Fatalf("entries: %d live, %d tombstones, %d counted; want 3, 1, 3", live, dead, s.Stats().Objects)
	}
}

// ExpireTombstones works in pages (its memory must not grow with the
// store): with a page of 3, it expires every old tombstone among young
// ones across many pages, leaves the young ones, and no page holds more
// than 3.
func TestExpireTombstonesPages(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.NoSync = true
	s := mustOpen(t, cfg)
	s.expirePage = 3
	old := map[objid.OID]bool{}
	for i := range 40 {
		oid := mustOID(t, objid.SHA256, randomBytes(uint64(300+i), 10))
		at := int64(5000)
		if i%3 != 0 {
			at = int64(i)
			old[oid] = true
		}
		if _, err := s.Delete(ctx, oid, 1, at); err != nil {
			t.Fatal(err)
		}
	}
	if page, err := s.oldTombstones(ctx, objid.OID{}, 2000, 3); err != nil || len(page) != 3 {
		t.Fatalf("first page: %d OIDs, %v; want 3", len(page), err)
	}
	n, err := s.ExpireTombstones(ctx, 2000)
	if err != nil || n != len(old) {
		t.Fatalf("expired %d, %v; want %d", n, err, len(old))
	}
	left := 0
	err = s.RangeTombstones(ctx, func(e Entry) bool {
		if old[e.OID] {
			t.Errorf("old tombstone %s (at %d) left", e.OID, e.At)
		}
		left++
		return true
	})
	if err != nil || left != 40-len(old) {
		t.Fatalf("%d tombstones left, %v; want the %d young ones", left, err, 40-len(old))
	}
}
