package store

import (
	"sync"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stratum-store/stratum/api/objid"
)

// entryCache answers index reads for recently written or read OIDs from
// memory: Meta's entry (the size and stamp of a copy, or a tombstone's
// stamp and time) and Get's value log pointer (the o/ value of a small
// copy). A quorum GET read the index three times (the coordinator's entry
// and pointer, the peer's entry for its presence check), and in a busy
// store each read was a search of leveldb's 32 MiB memtable skiplist: a
// fifth of a GET's CPU (docs/performance.md, "Entries from memory").
//
// The cache must never answer with an entry the index no longer holds.
// Two rules make that so:
//
//   - Writes. Every index write goes through writeBatch, which, after the
//     write, looks at the batch's o/ and t/ keys: a put of either is the
//     OID's new entry (an o/ entry with its size, stamp and, for a value
//     log pointer, the pointer), stored in the cache; a delete drops what
//     the key held, and a failed write drops all the cache knew of the
//     OID. Every writer of those
//     keys holds the OID's stripe lock (lockObject, PutBatch, dropEntries'
//     callers), so two writes of one OID reach the cache in the order they
//     reached the index. Replay at Open writes with the cache still off.
//   - Reads. A miss reads the index and may fill the cache, but only if no
//     write of an OID in the same shard came between the reader's start and
//     its fill: each write bumps the shard's generation, and the fill is
//     refused when the generation moved. So a reader that read the index
//     before a write can never put that old entry back after it.
//
// Shards follow the stripes (the OID's first byte). A full shard drops
// its oldest admission for each new one (first in, first out): the objects
// read most are those just written (a push, then its clones and CI
// fetches), and a store filled with a million objects used to drop an
// arbitrary entry, often a recent one, so that 7-20 % of the reads right
// after a write went to leveldb (docs/performance.md, "oldest out of the
// entry cache").
// Memory: about 240 bytes per entry (208 measured for the map's entry
// with its key, 33 for its place in the admission order;
// DefaultEntryCache entries: about 30 MiB per store).
type entryCache struct {
	on     bool // set once Open is done; read-only after that
	per    int  // entries per shard
	shards [256]entryShard

	// beforeFill, if set, runs between a reader's index read and its fill
	// (tests: a write lands in that window).
	beforeFill func(objid.OID)
}

type entryShard struct {
	mu  sync.Mutex
	gen uint64
	m   map[cacheKey]cachedEntry

	// order holds the keys in the order they were admitted to m, a ring
	// of up to per keys whose oldest is at next once it is full. Every
	// key in m sits in the slot of its latest admission, so m never holds
	// more than per keys. A key dropped and admitted again has two slots;
	// the older one, when reused, drops it early (a later miss, never a
	// wrong answer).
	order []cacheKey
	next  int
}

// cacheKey is an OID as bytes (its hex digits decoded, and how many
// bytes). With neither key nor value holding a pointer, the shard maps
// are not scanned by the garbage collector: with string keys, three full
// caches held 393,216 strings it marked on every cycle (6 % of a PUT's
// CPU at 1,000,000 objects, docs/performance.md, "On a new machine").
type cacheKey struct {
	n uint8
	b [32]byte
}

// keyOf decodes a validated OID's hex digits (40 or 64 of them).
func keyOf[T string | []byte](hex T) cacheKey {
	var k cacheKey
	k.n = uint8(min(len(hex)/2, len(k.b)))
	for i := range int(k.n) {
		k.b[i] = hexValue[hex[2*i]]<<4 | hexValue[hex[2*i+1]]
	}
	return k
}

// cachedEntry is what the cache knows of one OID: its entry (an Entry
// without its OID, the map key) and, for a copy in the value log, where
// its record is (the o/ value). Each part is known or not on its own.
type cachedEntry struct {
	size    int64
	stamp   objid.Stamp
	at      int64
	ptr     logPtr
	deleted bool
	hasMeta bool // size, stamp, at, deleted hold the o/ entry's trailer or the t/ entry
	hasPtr  bool // ptr holds the o/ entry's value log pointer
}

// DefaultEntryCache is the number of index entries a store keeps in memory
// when Config.EntryCache is 0.
const DefaultEntryCache = 1 << 17

func (c *entryCache) start(entries int) {
	if entries <= 0 {
		return
	}
	c.per = max(1, entries/len(c.shards))
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cachedEntry)
	}
	c.on = true
}

func (c *entryCache) shard(hex string) *entryShard {
	return &c.shards[unhex(hex[0])<<4|unhex(hex[1])]
}

func unhex(b byte) int {
	if b >= 'a' {
		return int(b-'a') + 10
	}
	return int(b - '0')
}

// lookup returns oid's cached entry, or, on a miss, the generation a later
// fill must present.
func (c *entryCache) lookup(oid objid.OID) (Entry, bool, uint64) {
	if !c.on {
		return Entry{}, false, 0
	}
	hex := oid.String()
	sh := c.shard(hex)
	sh.mu.Lock()
	ce, ok := sh.m[keyOf(hex)]
	gen := sh.gen
	sh.mu.Unlock()
	if !ok || !ce.hasMeta {
		return Entry{}, false, gen
	}
	return Entry{OID: oid, Size: ce.size, Stamp: ce.stamp, Deleted: ce.deleted, At: ce.at}, true, gen
}

// lookupPtr returns where oid's value log record is, or, on a miss, the
// generation a later fillPtr must present.
func (c *entryCache) lookupPtr(oid objid.OID) (logPtr, bool, uint64) {
	if !c.on {
		return logPtr{}, false, 0
	}
	hex := oid.String()
	sh := c.shard(hex)
	sh.mu.Lock()
	ce := sh.m[keyOf(hex)]
	gen := sh.gen
	sh.mu.Unlock()
	return ce.ptr, ce.hasPtr, gen
}

// fill stores an entry a reader read from the index, unless a write of
// the shard came after the reader's lookup.
func (c *entryCache) fill(e Entry, gen uint64) {
	if !c.on {
		return
	}
	if c.beforeFill != nil {
		c.beforeFill(e.OID)
	}
	hex := e.OID.String()
	sh := c.shard(hex)
	sh.mu.Lock()
	if sh.gen == gen {
		k := keyOf(hex)
		ce := sh.m[k]
		ce.size, ce.stamp, ce.at, ce.deleted, ce.hasMeta = e.Size, e.Stamp, e.At, e.Deleted, true
		sh.put(k, ce, c.per)
	}
	sh.mu.Unlock()
}

// fillPtr stores where oid's record is, read from the index, unless a
// write of the shard came after the reader's lookupPtr.
func (c *entryCache) fillPtr(oid objid.OID, p logPtr, gen uint64) {
	if !c.on {
		return
	}
	if c.beforeFill != nil {
		c.beforeFill(oid)
	}
	hex := oid.String()
	sh := c.shard(hex)
	sh.mu.Lock()
	if sh.gen == gen {
		k := keyOf(hex)
		ce := sh.m[k]
		ce.ptr, ce.hasPtr = p, true
		sh.put(k, ce, c.per)
	}
	sh.mu.Unlock()
}

// put stores ce under k, or drops k when ce knows nothing. A key not in
// the shard is admitted: once per keys have been, each admission takes
// the slot of the oldest one and drops that key.
func (sh *entryShard) put(k cacheKey, ce cachedEntry, per int) {
	if !ce.hasMeta && !ce.hasPtr {
		delete(sh.m, k)
		return
	}
	n := len(sh.m)
	sh.m[k] = ce // no probe first: the length says whether k is new
	if len(sh.m) == n {
		return
	}
	if len(sh.order) < per {
		sh.order = append(sh.order, k)
		return
	}
	if old := sh.order[sh.next]; old != k {
		delete(sh.m, old)
	}
	sh.order[sh.next] = k
	sh.next = (sh.next + 1) % per
}

// written applies an index write (b, and whether it succeeded) to the
// cache; the caller holds the stripe lock of every OID b writes o/ or t/
// keys of.
func (c *entryCache) written(b *leveldb.Batch, ok bool) {
	if !c.on {
		return
	}
	b.Replay(cacheWriter{c: c, ok: ok})
}

// cacheWriter replays a batch into the cache. A batch that writes an
// OID's entry twice (PutBatch with the OID listed twice, the second time
// with a higher stamp) leaves the later one, as the index does.
type cacheWriter struct {
	c  *entryCache
	ok bool
}

func (w cacheWriter) Put(key, value []byte) { w.apply(key, value, true) }
func (w cacheWriter) Delete(key []byte)     { w.apply(key, nil, false) }

func (w cacheWriter) apply(key, value []byte, put bool) {
	hex, ok := indexedOID(key)
	prefix := string(key[:min(2, len(key))])
	if !ok || (prefix != tombPrefix && prefix != objectPrefix) {
		return
	}
	sh := w.c.shard(string(hex[:2]))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.gen++
	k := keyOf(hex)
	if !w.ok {
		delete(sh.m, k)
		return
	}
	// An OID has one key at a time, its o/ entry or its t/ tombstone, so
	// the key written says all the cache holds for the OID: the entry is
	// made anew, never read first (a map probe that missed the processor's
	// cache on every put: 4 % of a Git push's CPU). A deletion leaves
	// nothing; what the batch puts after it (a tombstone after the entry,
	// an entry after the tombstone) refills it.
	var ce cachedEntry
	var err error
	switch {
	case prefix == objectPrefix && put:
		var body []byte
		body, ce.size, ce.stamp, err = splitEntry(value)
		ce.hasMeta = err == nil
		if err == nil && body[0] == codecLog {
			ce.ptr, err = parseLogEntry(body)
			ce.hasPtr = err == nil
		}
	case put:
		ce.stamp, ce.at, err = parseTomb(value)
		ce.deleted, ce.hasMeta = true, err == nil
	}
	sh.put(k, ce, w.c.per)
}
