// Package store is the storage engine of one stratum data node: it keeps
// verified copies of content-addressed Git objects on local disk. It knows
// nothing of HTTP, the ring or etcd; the datanode package wraps it.
//
// A typical use:
//
//	st, err := store.Open(store.DefaultConfig("/var/lib/stratum/node1"))
//	if err != nil {
//		return err
//	}
//	defer st.Close()
//	oid, _ := api.Digest(api.SHA1, data)
//	created, err := st.Put(ctx, oid, data) // durable when it returns
//	obj, err := st.Get(ctx, oid)           // verified: obj.Data, or obj.Body to read and close
//
// Every object is stored under the OID its bytes hash to. Put and PutReader
// hash the body and refuse it (api.ErrDigestMismatch, or api.ErrCollision for
// a SHA-1 collision attack) before anything is written; Get hashes the copy
// again and refuses to serve one that fails (ErrCorrupt, logged). A second
// put of a stored object verifies the body, writes nothing and reports
// created=false; of several concurrent puts of one OID exactly one reports
// created=true.
//
// # Layout on disk
//
//	<Dir>/db/                 goleveldb: the index
//	<Dir>/vlog/<n>.vlog       the value log: small objects' bytes, appended
//	<Dir>/objects/<aa>/<oid>  one file per large object; aa = the OID's first
//	                          two hex digits (at most 256 directories)
//	<Dir>/tmp/                large puts in progress; emptied at Open
//
// Objects of at most Config.LargeThreshold bytes (default 1 MiB) are
// appended to the value log (vlog.go) and the index holds a pointer;
// larger ones are files. Keeping object bytes out of leveldb keeps its
// compactions small as the store grows (docs/performance.md). Each object
// has one leveldb key:
//
//	o/<oid>  one codec byte, then: the raw bytes (0), a zstd frame (1), an
//	         S2 block (5), for a file the size as a uvarint (2: raw file,
//	         3: zstd file), or a value log pointer (4: segment, offset,
//	         length as uvarints, to a record holding the OID and a codec 0,
//	         1 or 5 value); then the
//	         trailer: the object's size and the stamp of its newest write,
//	         8 bytes each, big-endian
//
// beside a tombstone's t/<oid> (tombstone.go), the value log's checkpoint
// v/checkpoint and removal markers x/<oid> (replay.go), and the index
// format f/format. A store written before 2026-12-07 had a second key per
// object, s/<oid> with the size and stamp; Open converts it (migrate.go).
//
// Stat and the counting of Stats at Open read the o/ entries' trailers;
// with the value log an entry is a short pointer, so they never touch the
// object bytes (with NoValueLog they read the inline bytes along). File
// names come only from api.OID.String(), which is validated lowercase hex.
// The codec numbers are part of the on-disk format. LargeThreshold may
// change between runs: it decides where new objects go, and existing ones
// stay put.
//
// # Durability
//
// Unless Config.NoSync is set, a put returns only once its copy would
// survive a power loss. A small object's record, which carries the OID and
// the put's stamp, is appended to the value log and the segment fsync'd
// (concurrent puts share one fsync), then its index entries are written
// as one leveldb batch, not synced: the record is the put's log of record,
// and one fsync makes the put durable. A power loss may drop the last
// unsynced index writes; Open indexes their records again, from a
// checkpoint on, where the put still stands (vlog.go, "The log of record",
// has the rules; replay.go the code). Everything else that writes the
// index (deletes, removals, stamp raises, large objects, the collector)
// writes it synced, and a synced write makes every earlier one durable
// (across goleveldb's journal rotations too: index.go, syncedJournals).
// An index entry never points at bytes that are not durable. The value
// log's collector (vloggc.go) rewrites segments that are mostly garbage.
// Config.NoValueLog stores new small objects inline in leveldb instead;
// both kinds stay readable either way. A large object is
// streamed into a temp file under tmp while it is hashed, verified, fsync'd,
// renamed into objects/<aa>/, and the directory fsync'd; only then is its
// index entry written (synced). An index entry therefore never names a file
// that is not durable. A crash after the rename but before the index write
// leaves a file without an entry: Open indexes it again if it verifies and
// removes it otherwise, and removes whatever is in tmp.
//
// leveldb is opened with StrictJournalChecksum and StrictBlockChecksum. If
// Open finds the index corrupt it rebuilds it with leveldb.Recover and logs
// a warning.
//
// # Compression
//
// Small objects are compressed with S2 (or zstd, with Config.ZstdValues:
// codec.go weighs the two) and stored compressed only if that is smaller;
// bytes that look random are stored raw without a trial. For a
// large object the first 64 KiB are trial-compressed: if they shrink below
// 75 % the whole object is stream-compressed into its file (4 MiB window),
// otherwise it is stored raw. The index entry records which. Sizes
// (Stat, Stats, Object.Size) are always the logical, uncompressed sizes.
//
// # Concurrency
//
// A Store is safe for concurrent use. Puts of distinct objects run in
// parallel; the commit step of a put (existence check, rename, index write)
// holds one of 256 stripe locks, chosen by the OID's first byte. Only
// PutBatch and the value log collector hold several stripes, taken in
// ascending order (lockOIDs); none holds a stripe while reading a body.
// Operations on one OID (puts, deletes, removals, quarantine, expiry) take
// effect one at a time, each at one point under its stripe, so their
// answers and the final state are those of some order of them; Get, which
// takes no stripe, reads again when the entry it read changes under it. A
// re-put of a large object verifies its body against a hard link to the
// stored copy (large.go), so a delete or removal landing meanwhile never
// leaves an entry without bytes. A value log record appended but not yet
// indexed pins its segment against the collector (vloggc.go), and one
// collection runs at a time. TestStoreModel checks all of this against a
// model. Close waits for the operations in flight; later calls return
// ErrClosed. Every operation checks ctx before it starts, and streaming
// ones between chunks of 256 KiB.
//
// # Caveats
//
//   - Get of a large object reads the whole file once to verify it before it
//     returns, then serves it from the same open file. Body hashes again as
//     it is read: a file damaged in between makes the final Read return
//     ErrCorrupt instead of io.EOF, after the bytes were handed out. Treat a
//     Body read error as a failed transfer, never as a short object.
//   - Stat does not read or verify the object: a corrupt copy has a size.
//   - With NoSync, a process crash loses nothing but a machine crash or power
//     loss can lose acknowledged puts. kill -9 cannot show this; the tests
//     simulate power loss with a goleveldb storage.Storage that drops bytes
//     written since the last Sync.
//   - The power-loss simulation covers the leveldb index and the value
//     log. The ordering of large-object files (fsync, rename, directory
//     fsync, then index) relies on the file system honouring fsync and
//     atomic rename: use a local file system, not a network one.
//   - Stats counts logical bytes, not disk usage, and is exact only for this
//     process's puts plus the count made at Open.
//   - Open walks objects/ to find files without an index entry: its time
//     grows with the number of large objects.
//   - Objects are immutable; Delete replaces a copy with a stamped
//     tombstone (tombstone.go) and Remove drops a copy without one.
package store
