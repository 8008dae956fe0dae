package store

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stratum-store/stratum/api/objid"
)

func hexOID(i int) []byte {
	sum := sha1.Sum([]byte(fmt.Sprint(i)))
	return []byte(hex.EncodeToString(sum[:]))
}

// The filter never forgets an OID, through several growths and from
// concurrent markers, and answers "absent" for most OIDs it never saw.
func TestSeenNeverForgetsAndRarelyGuesses(t *testing.T) {
	var f seen
	f.layers.Store(&[]*seenLayer{newSeenLayer(1024)})
	const n = 40_000
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 4 {
				f.mark(hexOID(i))
			}
		}()
	}
	wg.Wait()
	if layers := len(*f.layers.Load()); layers < 4 {
		t.Fatalf("%d layers after %d marks from room for 1,024: the filter did not grow", layers, n)
	}
	for i := 0; i < n; i++ {
		if !f.mayHave(string(hexOID(i))) {
			t.Fatalf("OID %d was marked but the filter says it is absent", i)
		}
	}
	wrong := 0
	for i := n; i < 2*n; i++ {
		if f.mayHave(string(hexOID(i))) {
			wrong++
		}
	}
	if wrong > n/20 {
		t.Fatalf("%d of %d unmarked OIDs reported present: the filter is not filtering", wrong, n)
	}
}

// A batch that writes keys of one OID one after the other (in the old
// format every put wrote o/ and s/; PutBatch still writes an OID listed
// twice with a higher stamp twice) counts the OID once against its
// layer's room: before, it counted twice, so layers
// filled at half their OIDs and a store of 1,000,000 objects probed five
// layers per new OID instead of three.
func TestSeenCountsEachOIDOnce(t *testing.T) {
	var f seen
	f.layers.Store(&[]*seenLayer{newSeenLayer(1 << 20)})
	b := new(leveldb.Batch)
	const n = 500
	for i := range n {
		oid := hexOID(i)
		b.Put(append([]byte(objectPrefix), oid...), []byte{1})
		b.Put(append([]byte(markPrefix), oid...), []byte{1})
	}
	b.Replay(&seenMarker{f: &f})
	if got := (*f.layers.Load())[0].count.Load(); got != n {
		t.Fatalf("%d OIDs written with two keys each counted %d times; want %d", n, got, n)
	}
	for i := range n {
		if !f.mayHave(string(hexOID(i))) {
			t.Fatalf("OID %d not marked", i)
		}
	}
}

// An unbuilt filter (during Open) answers "may have" for everything.
func TestSeenBeforeBuildAnswersMaybe(t *testing.T) {
	var f seen
	f.mark(hexOID(1))
	if !f.mayHave(string(hexOID(2))) {
		t.Fatal("an unbuilt filter said an OID is absent")
	}
}

// After a reopen the filter is rebuilt from the index: a tombstone still
// refuses an older write and a stored object is still found, so the
// filter's "absent" never hides a key that was written before the
// restart.
func TestSeenIsRebuiltFromTheIndexAtOpen(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.NoSync = true
	s := mustOpen(t, cfg)
	kept, gone := textBytes(1, 100), textBytes(2, 100)
	keptOID, goneOID := mustOID(t, objid.SHA1, kept), mustOID(t, objid.SHA1, gone)
	for _, d := range [][]byte{kept, gone} {
		if _, err := s.PutStamped(context.Background(), mustOID(t, objid.SHA1, d), d, 5); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Delete(context.Background(), goneOID, 10, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, cfg)
	if !s.mayHave(keptOID) || !s.mayHave(goneOID) {
		t.Fatal("the rebuilt filter lost an OID the index holds")
	}
	if got := mustGet(t, s, keptOID); string(got) != string(kept) {
		t.Fatal("the stored object reads back different")
	}
	_, err := s.PutStamped(context.Background(), goneOID, gone, 7)
	if !errors.Is(err, ErrSuperseded) {
		t.Fatalf("a put older than the tombstone after a reopen: err=%v, want ErrSuperseded", err)
	}
}

func BenchmarkSeenMayHave(b *testing.B) {
	var f seen
	f.layers.Store(&[]*seenLayer{newSeenLayer(1 << 20)})
	oids := make([]string, 4096)
	for i := range oids {
		oids[i] = string(hexOID(i))
		if i%2 == 0 {
			f.mark(hexOID(i))
		}
	}
	for i := 0; b.Loop(); i++ {
		f.mayHave(oids[i%len(oids)])
	}
}
