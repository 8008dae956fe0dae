package store

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/stratum-store/stratum/api/objid"
)

// seen answers "certainly never indexed here" for an OID from memory, so
// that a put of a new object (the common case) skips the index lookups
// that would only find nothing (reads, which mostly find their object, do
// not ask it, except for a missing object's tombstone): before it, a new
// object cost four leveldb reads per replica (the size and tombstone keys,
// twice), a quarter of a Git push's CPU (docs/performance.md).
//
// It is a Bloom filter over every OID that has, or ever had since the store
// opened, an o/ or t/ key: built from the index at Open, and marked by
// writeIndex before each index write, so an OID is marked before any reader
// can see its keys. A reader that finds an OID unmarked therefore runs
// before the write that will mark it, and "not found" is the true answer at
// that moment. Keys are never unmarked (a delete or an expiry only leaves a
// false positive, which costs the lookup seen saves).
//
// The OID is already a cryptographic hash, so its first 16 bytes give the
// two 64-bit hashes directly: one picks a 64-byte block, the other 7 bits
// in it. A layer holds 10 bits per OID (about 1-2 % false positives when
// full); when one is full a layer seenGrowth times the size is added, so
// the filter grows with the store (1.25-5 MB per million objects) and
// never needs a rebuild.
type seen struct {
	mu     sync.Mutex // serialises growth
	layers atomic.Pointer[[]*seenLayer]
}

const (
	seenBitsPerOID = 10
	seenProbes     = 7
	seenMinOIDs    = 1 << 16
)

type seenLayer struct {
	words []atomic.Uint64
	mask  uint64 // bits-1; the bit count is a power of two
	room  int64  // OIDs it is sized for
	count atomic.Int64
}

func newSeenLayer(oids int64) *seenLayer {
	bits := uint64(512)
	for bits < uint64(oids)*seenBitsPerOID {
		bits <<= 1
	}
	return &seenLayer{words: make([]atomic.Uint64, bits/64), mask: bits - 1, room: int64(bits / seenBitsPerOID)}
}

// oidHashes returns two 64-bit hashes from the OID's first 32 hex digits
// (every OID has at least 40).
func oidHashes[T string | []byte](hex T) (uint64, uint64) {
	var h [2]uint64
	for i := 0; i < 32; i++ {
		h[i/16] = h[i/16]<<4 | uint64(hexValue[hex[i]])
	}
	return h[0], h[1] | 1
}

// hexValue maps a lowercase hex digit to its value (OIDs are validated).
var hexValue = func() (t [256]byte) {
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

// probe returns the block of 8 words (one cache line) that h1 picks and
// the 7 bits in it that h2 picks, 9 bits of h2 each: a blocked Bloom
// filter, one cache miss per probe instead of seven.
func (l *seenLayer) probe(h1, h2 uint64) ([]atomic.Uint64, [seenProbes]uint16) {
	start := (h1 & l.mask) / 512 * 8
	var bits [seenProbes]uint16
	for i := range bits {
		bits[i] = uint16(h2 >> (9 * i) & 511)
	}
	return l.words[start : start+8], bits
}

func (l *seenLayer) mark(h1, h2 uint64) {
	block, bits := l.probe(h1, h2)
	for _, b := range bits {
		w := &block[b/64]
		if m := uint64(1) << (b % 64); w.Load()&m == 0 {
			w.Or(m)
		}
	}
	l.count.Add(1)
}

func (l *seenLayer) has(h1, h2 uint64) bool {
	block, bits := l.probe(h1, h2)
	for _, b := range bits {
		if block[b/64].Load()&(uint64(1)<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// mayHave reports whether oid may have index keys; false is certain. A
// store whose filter is not built yet (during Open) answers true.
func (f *seen) mayHave(hex string) bool {
	layers := f.layers.Load()
	if layers == nil {
		return true
	}
	h1, h2 := oidHashes(hex)
	for _, l := range *layers {
		if l.has(h1, h2) {
			return true
		}
	}
	return false
}

// mark records oid (as hex). Before the filter is built it does nothing:
// the build reads the index after every write of Open.
func (f *seen) mark(hex []byte) {
	layers := f.layers.Load()
	if layers == nil {
		return
	}
	last := (*layers)[len(*layers)-1]
	if last.count.Load() >= last.room {
		last = f.grow(last)
	}
	last.mark(oidHashes(hex))
}

// seenGrowth is how much larger each new layer is than the last: a
// new OID probes every layer (one cache line each), so fewer, larger
// layers cost less per put; by four, a store of 1,000,000 objects has
// three layers where doubling gave it five (docs/performance.md, "On a
// new machine").
const seenGrowth = 4

// grow adds a layer seenGrowth times the size of full, unless another
// mark did so.
func (f *seen) grow(full *seenLayer) *seenLayer {
	f.mu.Lock()
	defer f.mu.Unlock()
	layers := *f.layers.Load()
	if last := layers[len(layers)-1]; last != full {
		return last
	}
	next := append(append([]*seenLayer(nil), layers...), newSeenLayer(seenGrowth*full.room))
	f.layers.Store(&next)
	return next[len(next)-1]
}

// build marks every OID that has an o/, s/ or t/ key, in a layer sized for
// twice their number, and turns the filter on. Open calls it once, before
// the store serves anything.
func (f *seen) build(db *leveldb.DB) error {
	var hashes [][2]uint64
	it := db.NewIterator(nil, nil)
	defer it.Release()
	for it.Next() {
		if oid, ok := indexedOID(it.Key()); ok {
			h1, h2 := oidHashes(oid)
			hashes = append(hashes, [2]uint64{h1, h2})
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: build the OID filter: %w", err)
	}
	l := newSeenLayer(max(seenMinOIDs, 2*int64(len(hashes))))
	for _, h := range hashes {
		l.mark(h[0], h[1])
	}
	f.layers.Store(&[]*seenLayer{l})
	return nil
}

// indexedOID returns the OID hex of an o/, s/, t/ or x/ key.
func indexedOID(key []byte) ([]byte, bool) {
	if len(key) < 2+40 || key[1] != '/' {
		return nil, false
	}
	switch string(key[:2]) {
	case objectPrefix, sizePrefix, tombPrefix, markPrefix:
		return key[2:], true
	}
	return nil, false
}

// writeIndex marks the OID of every key b puts, then writes b: the one
// way the store writes its index (see seen).
func (s *Store) writeIndex(b *leveldb.Batch) error {
	return s.writeBatch(b, s.wo)
}

// writeBatch is writeIndex with the write's options. Once a rotated
// journal failed its fsync (syncedJournals) it writes nothing: the error
// is refused before the write, so a write either happened or failed.
func (s *Store) writeBatch(b *leveldb.Batch, wo *opt.WriteOptions) error {
	if err := s.journals.err(); err != nil {
		return err
	}
	b.Replay(&seenMarker{f: &s.seen})
	err := s.db.Write(b, wo)
	s.entries.written(b, err == nil)
	return err
}

// seenMarker marks the OIDs of a batch's keys. A batch may write keys of
// one OID one after the other (an OID listed twice in a PutBatch; every
// put, in the old format with two keys per object): marking the OID once
// counts it once against its layer's room (twice, a layer fills at half
// the OIDs it was sized for).
type seenMarker struct {
	f    *seen
	last []byte // the OID marked last
}

func (m *seenMarker) Put(key, _ []byte) {
	if oid, ok := indexedOID(key); ok && !bytes.Equal(oid, m.last) {
		m.f.mark(oid)
		m.last = oid
	}
}

func (m *seenMarker) Delete([]byte) {}

// mayHave reports whether oid may have index keys here; false is certain.
func (s *Store) mayHave(oid objid.OID) bool { return s.seen.mayHave(oid.String()) }
