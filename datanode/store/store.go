package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/stratum-store/stratum/api/objid"
	"github.com/stratum-store/stratum/internal/planted"
)

// Store is the storage engine of one data node. It is safe for concurrent
// use; see the package documentation for its layout and guarantees.
type Store struct {
	cfg   Config
	log   *slog.Logger
	paths layout
	db    *leveldb.DB
	wo    *opt.WriteOptions
	// journals is the index's storage (index.go: it syncs rotated
	// journals); closeStorage closes its files, when Open opened them.
	journals     *syncedJournals
	closeStorage func() error
	codecs       *codecs
	seen         seen       // OIDs that may have index keys (seen.go)
	entries      entryCache // recent index entries, for Meta (entrycache.go)

	// stripes serialise the commit step of puts (existence check, file
	// rename, index write) per OID shard. A put holds at most one stripe,
	// only around its commit, and never while reading its body.
	stripes [256]sync.Mutex

	objects atomic.Int64
	bytes   atomic.Int64
	kept    atomic.Int64 // names the links of keepCopy (large.go)

	// expirePage bounds the tombstones ExpireTombstones holds at once
	// (defaultExpirePage; tests lower it).
	expirePage int

	// closeMu is held shared by every operation for its duration and
	// exclusively by Close, which therefore waits for operations in flight.
	// Lock order: closeMu, then at most one stripe.
	closeMu sync.RWMutex
	closed  bool

	// vlog holds small objects' bytes, unless Config.NoValueLog (vlog.go);
	// live counts its live bytes per segment (vloggc.go).
	vlog *valueLog
	live logLive
	gcMu sync.Mutex // one value log collection at a time

	// The log of record (replay.go): how often a checkpoint is written
	// (defaultCheckpointEvery; tests change it), whether one is due (puts
	// wrote their index unsynced, or removals wrote markers, since the
	// last), when the last was written (UnixNano),
	// one checkpoint writer at a time, the removal markers written since,
	// and how many records the last Open's replay indexed.
	checkpointEvery time.Duration
	checkpointPos   logPos // the last checkpoint written (under checkpointMu, or alone: Open, Close)
	checkpointDue   atomic.Bool
	checkpointAt    atomic.Int64
	checkpointMu    sync.Mutex
	markMu          sync.Mutex
	markers         []marker
	replayed        int
}

// Object is one stored object as Get returns it: Data for an object stored
// in leveldb (at or below LargeThreshold when it was put), Body for one
// stored as a file. The caller must close Body.
type Object struct {
	Size int64
	Data []byte
	Body io.ReadCloser
}

// Stats counts the objects stored here and their logical (uncompressed)
// bytes.
type Stats struct {
	Objects int64
	Bytes   int64
}

// Open opens or creates the store in cfg.Dir. It removes the temp files of
// puts that never finished, indexes again (or removes) object files that
// no index entry names, and counts the stored objects.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if planted.NoSync { // a negative control only (internal/planted)
		cfg.NoSync = true
	}
	s := &Store{cfg: cfg, log: cfg.Logger, paths: layout{root: cfg.Dir}, wo: &opt.WriteOptions{Sync: !cfg.NoSync}, expirePage: defaultExpirePage, checkpointEvery: defaultCheckpointEvery}
	removed, err := s.paths.prepare(!cfg.NoSync)
	if err != nil {
		return nil, err
	}
	if removed > 0 {
		s.log.Info("removed temp files of unfinished puts", "count", removed)
	}
	if s.codecs, err = newCodecs(cfg.ZstdValues); err != nil {
		return nil, err
	}
	if s.db, s.journals, s.closeStorage, err = openIndex(cfg, s.paths.dbDir()); err != nil {
		s.codecs.close()
		return nil, err
	}
	// Open even with NoValueLog: what was written there stays readable.
	s.live.bytes, s.live.pins, s.live.pending = map[uint64]int64{}, map[uint64]int{}, map[logPos]int{}
	if s.vlog, err = openValueLog(s.paths.vlogDir(), !cfg.NoSync, cfg.SegmentSize, &s.live); err != nil {
		s.abort()
		return nil, err
	}
	s.vlog.commitDelay = cfg.CommitDelay // negative: none
	if err := s.scan(); err != nil {
		s.abort()
		return nil, err
	}
	s.entries.start(cfg.EntryCache) // after replay, which writes the index around writeBatch
	s.log.Debug("store opened", "dir", cfg.Dir, "objects", s.objects.Load(), "bytes", s.bytes.Load())
	return s, nil
}

// scan converts an index of the old format (migrate.go), indexes again the
// puts a crash dropped from the index (replay.go),
// reconciles the object files with the index, then counts objects.
func (s *Store) scan() error {
	if _, err := s.migrate(); err != nil {
		return err
	}
	if err := s.replay(); err != nil {
		return err
	}
	if err := s.sweepOrphans(); err != nil {
		return err
	}
	if err := s.countLive(); err != nil {
		return err
	}
	if err := s.countObjects(); err != nil {
		return err
	}
	return s.seen.build(s.db)
}

func (s *Store) abort() {
	s.db.Close()
	if s.closeStorage != nil {
		s.closeStorage()
	}
	s.codecs.close()
	if s.vlog != nil {
		s.vlog.close()
	}
}

// Close waits for operations in flight and closes the store. Bodies
// returned by Get stay readable. A second Close returns ErrClosed.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	err := s.settleLog() // the next Open has nothing to replay
	if err != nil {
		s.log.Warn("value log checkpoint not written at close; the next Open replays", "err", err)
	}
	err = s.db.Close()
	if s.closeStorage != nil {
		err = errors.Join(err, s.closeStorage())
	}
	s.codecs.close()
	if s.vlog != nil {
		err = errors.Join(err, s.vlog.close())
	}
	if err != nil {
		return fmt.Errorf("store: close index: %w", err)
	}
	return nil
}

// begin starts an operation on oid: it fails on a closed store, an invalid
// OID or a done ctx, and otherwise returns the function that ends it.
func (s *Store) begin(ctx context.Context, oid objid.OID) (end func(), err error) {
	s.closeMu.RLock()
	switch {
	case s.closed:
		err = ErrClosed
	case ctx.Err() != nil:
		err = ctx.Err()
	case oid.IsZero():
		// Every other OID is valid hex: objid makes them only by parsing
		// or hashing, so begin need not parse it again (2 % of a GET).
		err = fmt.Errorf("store: %w: the zero OID", objid.ErrInvalid)
	}
	if err != nil {
		s.closeMu.RUnlock()
		return nil, err
	}
	return s.closeMu.RUnlock, nil
}

// Stats returns the counts of stored objects and their logical bytes.
func (s *Store) Stats() Stats {
	return Stats{Objects: s.objects.Load(), Bytes: s.bytes.Load()}
}

// Stat returns the size of the object without reading or verifying it, or
// an error wrapping ErrNotFound (a *StampError wrapping ErrDeleted too when
// a tombstone is there).
func (s *Store) Stat(ctx context.Context, oid objid.OID) (int64, error) {
	e, err := s.Meta(ctx, oid)
	if err == nil && e.Deleted {
		err = &StampError{Kind: ErrDeleted, Stamp: e.Stamp}
	}
	return e.Size, err
}

// lockObject begins an operation on oid and takes its stripe lock, for the
// read-decide-write steps (delete, remove, quarantine, expiry) that must
// not interleave with a put of the same object. The caller calls unlock.
func (s *Store) lockObject(ctx context.Context, oid objid.OID) (unlock func(), err error) {
	end, err := s.begin(ctx, oid)
	if err != nil {
		return nil, err
	}
	mu := s.stripe(oid)
	mu.Lock()
	return func() { mu.Unlock(); end() }, nil
}

func (s *Store) stripe(oid objid.OID) *sync.Mutex {
	i, _ := strconv.ParseUint(shard(oid), 16, 8)
	return &s.stripes[i]
}

// corrupt logs a copy that fails verification and returns the error that
// reports it. The cause is not wrapped: a damaged copy is ErrCorrupt, not a
// digest mismatch of the caller's request.
func (s *Store) corrupt(oid objid.OID, cause error) error {
	s.log.Error("stored copy is corrupt; not serving it", "oid", oid.String(), "err", cause)
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, oid, cause)
}

// indexError translates a leveldb read error.
func (s *Store) indexError(op string, oid objid.OID, err error) error {
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return notFound{oid}
	case lerrors.IsCorrupted(err):
		return s.corrupt(oid, err)
	}
	return fmt.Errorf("store: %s %s: %w", op, oid, err)
}

// Range calls fn with the OID and size of every stored object, in OID order
// per algorithm, until fn returns false or ctx is done. It reads only the
// index's size entries. Objects stored during the walk may or may not be seen.
func (s *Store) Range(ctx context.Context, fn func(oid objid.OID, size int64) bool) error {
	return s.RangeCopies(ctx, func(e Entry) bool { return fn(e.OID, e.Size) })
}

// RangeCopies is Range with each copy's whole entry (size and stamp).
func (s *Store) RangeCopies(ctx context.Context, fn func(Entry) bool) error {
	return s.scanPrefix(ctx, objectPrefix, func(oid objid.OID, v []byte) (bool, error) {
		_, size, stamp, err := splitEntry(v)
		return err == nil && !fn(Entry{OID: oid, Size: size, Stamp: stamp}), err
	})
}

// scanPrefix walks the index keys under prefix in order, handing each OID and
// value to fn until fn reports stop or ctx is done. Keys that do not parse
// as an OID, and entries fn reports an error for, are skipped.
func (s *Store) scanPrefix(ctx context.Context, prefix string, fn func(oid objid.OID, v []byte) (stop bool, err error)) error {
	return s.scanRange(ctx, prefix, "", "", fn)
}
