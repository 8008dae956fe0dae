package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stratum-store/stratum/api/objid"
)

// The entry cache must mirror the index: after any mix of concurrent puts
// (single and batched, small and large), deletes, removals, quarantines,
// expiries, collections and reads of the same few OIDs, every cached entry
// and value log pointer equals what the index holds. Seeded; each seed runs four writers and
// readers at once, then compares, several rounds per seed. Run with a
// cache large enough for every OID and with one so small that it evicts
// all the time.
func TestEntryCacheMirrorsTheIndex(t *testing.T) {
	for _, entries := range []int{DefaultEntryCache, 256} { // 256: one per shard
		for seed := uint64(1); seed <= 6; seed++ {
			t.Run(fmt.Sprintf("entries=%d/seed=%d", entries, seed), func(t *testing.T) {
				cfg, _ := testConfig(t)
				cfg.LargeThreshold = 2 << 10
				cfg.EntryCache = entries
				s := mustOpen(t, cfg)
				var oids []objid.OID
				var datas [][]byte
				for i := range 12 {
					size := 100 + i*50
					if i%4 == 3 {
						size = 4 << 10 // a large object: a file, not the value log
					}
					d := randomBytes(seed*100+uint64(i), size)
					datas, oids = append(datas, d), append(oids, mustOID(t, objid.SHA256, d))
				}
				for round := range 4 {
					var wg sync.WaitGroup
					for w := range 4 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							r := rand.New(rand.NewPCG(seed, uint64(round*10+w)))
							for range 150 {
								i := r.IntN(len(oids))
								entryCacheOp(t, s, r, oids, datas, i)
							}
						}()
					}
					wg.Wait()
					hits := 0
					for _, oid := range oids {
						if p, ok, _ := s.entries.lookupPtr(oid); ok {
							hits++
							v, err := s.rawValue(oid)
							if err != nil || !bytes.Equal(v, p.entry()) {
								t.Fatalf("round %d: %s's pointer cached as %+v, index holds %x, %v", round, oid, p, v, err)
							}
						}
						cached, ok, _ := s.entries.lookup(oid)
						if !ok {
							continue
						}
						hits++
						indexed, err := s.metaRead(oid)
						if err != nil {
							t.Fatalf("round %d: %s cached as %+v, index says %v", round, oid, cached, err)
						}
						if cached != indexed {
							t.Fatalf("round %d: %s cached as %+v, indexed as %+v", round, oid, cached, indexed)
						}
					}
					if hits == 0 {
						t.Fatalf("round %d: no OID was cached: the comparison checked nothing", round)
					}
				}
			})
		}
	}
}

// entryCacheOp runs one random store operation on oids[i].
func entryCacheOp(t *testing.T, s *Store, r *rand.Rand, oids []objid.OID, datas [][]byte, i int) {
	oid, stamp := oids[i], objid.Stamp(1+r.IntN(60))
	var err error
	switch op := r.IntN(20); {
	case op < 6:
		_, err = s.PutStamped(ctx, oid, datas[i], stamp)
	case op < 8:
		j := r.IntN(len(oids))
		_, err = s.PutBatch(ctx, []BatchItem{{OID: oid, Data: datas[i], Stamp: stamp}, {OID: oids[j], Data: datas[j], Stamp: stamp + 1}})
	case op < 11:
		_, err = s.Delete(ctx, oid, stamp, int64(r.IntN(100)))
	case op < 12:
		err = s.Remove(ctx, oid)
	case op < 13:
		err = s.Quarantine(ctx, oid)
	case op < 14:
		_, err = s.ExpireTombstones(ctx, int64(r.IntN(100)))
	case op < 15:
		_, err = s.CollectValueLog(ctx)
	case op < 18:
		_, err = s.Meta(ctx, oid)
	default:
		var obj Object
		if obj, err = s.Get(ctx, oid); err == nil && obj.Body != nil {
			obj.Body.Close()
		}
	}
	if err != nil && !isExpected(err) {
		t.Errorf("%s: %v", oid, err)
	}
}

// isExpected: the refusals the rules give (superseded, deleted, not
// found, an intact copy is not quarantined).
func isExpected(err error) bool {
	_, stamped := StampOf(err)
	return stamped || errors.Is(err, ErrNotFound) || strings.HasSuffix(err.Error(), "the copy is intact")
}

// A reader that read an entry from the index before a write must not put
// that old entry into the cache after the write: here a delete lands
// between the reader's index read and its fill, and the next Meta must
// see the tombstone.
func TestEntryCacheRefusesAFillAfterAWrite(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	data := randomBytes(3, 500)
	oid := mustOID(t, objid.SHA256, data)
	if _, err := s.PutStamped(ctx, oid, data, 5); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, cfg) // an empty cache: the next Meta reads the index
	s.entries.beforeFill = func(objid.OID) {
		s.entries.beforeFill = nil
		if _, err := s.Delete(ctx, oid, 9, 1); err != nil {
			t.Error(err)
		}
	}
	if e, err := s.Meta(ctx, oid); err != nil || e.Deleted {
		t.Fatalf("the racing Meta: %+v, %v; want the copy it read before the delete", e, err)
	}
	if s.entries.beforeFill != nil {
		t.Fatal("the delete never ran between the index read and the fill")
	}
	e, err := s.Meta(ctx, oid)
	if err != nil || !e.Deleted || e.Stamp != 9 {
		t.Fatalf("Meta after the delete: %+v, %v; want the tombstone with stamp 9", e, err)
	}
}

// The same for a value log pointer: a Get that read the o/ value before a
// delete must not cache the pointer after it.
func TestEntryCacheRefusesAPointerFillAfterAWrite(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	data := randomBytes(4, 500)
	oid := mustOID(t, objid.SHA256, data)
	if _, err := s.PutStamped(ctx, oid, data, 5); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, cfg)
	s.entries.beforeFill = func(objid.OID) {
		s.entries.beforeFill = nil
		if _, err := s.Delete(ctx, oid, 9, 1); err != nil {
			t.Error(err)
		}
	}
	mustGet(t, s, oid) // the copy it found before the delete
	if s.entries.beforeFill != nil {
		t.Fatal("the delete never ran between the index read and the fill")
	}
	if p, ok, _ := s.entries.lookupPtr(oid); ok {
		t.Fatalf("the deleted copy's pointer %+v is cached", p)
	}
	if _, err := s.Get(ctx, oid); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Get after the delete: %v; want ErrDeleted", err)
	}
}

// A full shard drops its oldest admission: after more writes than it
// holds, the newest per keys are all there (with the arbitrary drop of
// before, most of them were not). Then a seeded mix of admissions,
// updates and drops, checked against a model after every step: the shard
// never holds more than per keys, and a key it holds has the value last
// put and was not dropped since.
func TestEntryCacheKeepsTheNewest(t *testing.T) {
	var c entryCache
	c.start(64 * len(c.shards))
	sh := &c.shards[0]
	key := func(i int) cacheKey {
		k := cacheKey{n: 32}
		k.b[1], k.b[2] = byte(i>>8), byte(i)
		return k
	}
	for i := range 1000 {
		sh.put(key(i), cachedEntry{hasMeta: true, size: int64(i)}, c.per)
	}
	if len(sh.m) != c.per {
		t.Fatalf("%d keys in a shard of %d after 1,000 admissions", len(sh.m), c.per)
	}
	for i := 1000 - c.per; i < 1000; i++ {
		if ce, ok := sh.m[key(i)]; !ok || ce.size != int64(i) {
			t.Fatalf("key %d, one of the newest %d, is gone (%v) or wrong (%d)", i, c.per, ok, ce.size)
		}
	}
	model := map[cacheKey]int64{}
	for k, ce := range sh.m {
		model[k] = ce.size
	}
	r := rand.New(rand.NewPCG(7, 8))
	for step := range 20000 {
		k := key(r.IntN(300))
		switch op := r.IntN(10); {
		case op < 2: // a delete: the key written says nothing is known
			sh.put(k, cachedEntry{}, c.per)
			delete(model, k)
		default:
			v := int64(step)
			sh.put(k, cachedEntry{hasPtr: true, size: v}, c.per)
			model[k] = v
		}
		if len(sh.m) > c.per {
			t.Fatalf("step %d: %d keys in a shard of %d", step, len(sh.m), c.per)
		}
		if ce, ok := sh.m[k]; ok {
			if want, in := model[k]; !in || ce.size != want {
				t.Fatalf("step %d: key holds %d; the model says %d (present %v)", step, ce.size, want, in)
			}
		}
		for k2, ce := range sh.m {
			if want, in := model[k2]; !in || ce.size != want {
				t.Fatalf("step %d: a held key holds %d; the model says %d (present %v)", step, ce.size, want, in)
			}
		}
	}
}
