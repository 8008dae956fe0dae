package store

import (
	"sync"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stratum-store/stratum/api/objid"
)

// entryCache answers Meta for recently written or read OIDs from memory:
// the size and stamp of a copy, or a tombstone's stamp and time. A quorum
// GET asks for an entry twice (the coordinator's own copy, and the peer's
// presence check), and in a busy store each ask was a search of leveldb's
// 32 MiB memtable skiplist: a fifth of a GET's CPU (docs/performance.md,
// "Entries from memory").
//
// The cache must never answer with an entry the index no longer holds.
// Two rules make that so:
//
//   - Writes. Every index write goes through writeBatch, which, after the
//     write, looks at the batch's s/ and t/ keys: a put of either is the
//     OID's new entry, stored in the cache; anything else about the OID
//     (a delete only, or a failed write) drops it. Every writer of those
//     keys holds the OID's stripe lock (lockObject, PutBatch, dropEntries'
//     callers), so two writes of one OID reach the cache in the order they
//     reached the index. Replay at Open writes with the cache still off.
//   - Reads. A miss reads the index and may fill the cache, but only if no
//     write of an OID in the same shard came between the reader's start and
//     its fill: each write bumps the shard's generation, and the fill is
//     refused when the generation moved. So a reader that read the index
//     before a write can never put that old entry back after it.
//
// Shards follow the stripes (the OID's first byte). A full shard drops an
// arbitrary entry for each new one. Memory: about 130 bytes per entry
// (DefaultEntryCache entries: about 17 MiB per store).
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
	m   map[string]cachedEntry
}

// cachedEntry is an Entry without its OID (the map key).
type cachedEntry struct {
	size    int64
	stamp   objid.Stamp
	at      int64
	deleted bool
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
		c.shards[i].m = make(map[string]cachedEntry)
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
	ce, ok := sh.m[hex]
	gen := sh.gen
	sh.mu.Unlock()
	if !ok {
		return Entry{}, false, gen
	}
	return Entry{OID: oid, Size: ce.size, Stamp: ce.stamp, Deleted: ce.deleted, At: ce.at}, true, gen
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
		sh.put(hex, cachedEntry{size: e.Size, stamp: e.Stamp, at: e.At, deleted: e.Deleted}, c.per)
	}
	sh.mu.Unlock()
}

func (sh *entryShard) put(hex string, ce cachedEntry, per int) {
	if _, ok := sh.m[hex]; !ok && len(sh.m) >= per {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[hex] = ce
}

// written applies an index write (b, and whether it succeeded) to the
// cache; the caller holds the stripe lock of every OID b writes s/ or t/
// keys of.
func (c *entryCache) written(b *leveldb.Batch, ok bool) {
	if !c.on {
		return
	}
	b.Replay(cacheWriter{c: c, ok: ok})
}

// cacheWriter replays a batch into the cache. A batch that writes an OID's
// entry twice (never done today) would leave the later one, as the index
// does.
type cacheWriter struct {
	c  *entryCache
	ok bool
}

func (w cacheWriter) Put(key, value []byte) { w.apply(key, value, true) }
func (w cacheWriter) Delete(key []byte)     { w.apply(key, nil, false) }

func (w cacheWriter) apply(key, value []byte, put bool) {
	if len(key) < 2 || (string(key[:2]) != sizePrefix && string(key[:2]) != tombPrefix) {
		return
	}
	hex, ok := indexedOID(key)
	if !ok {
		return
	}
	sh := w.c.shard(string(hex[:2]))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.gen++
	var ce cachedEntry
	var err error
	switch {
	case !w.ok || !put:
		delete(sh.m, string(hex))
		return
	case string(key[:2]) == sizePrefix:
		ce.size, ce.stamp, err = parseSizeEntry(value)
	default:
		ce.deleted = true
		ce.stamp, ce.at, err = parseTomb(value)
	}
	if err != nil {
		delete(sh.m, string(hex))
		return
	}
	sh.put(string(hex), ce, w.c.per)
}
