package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stratum-store/stratum/api/objid"
)

// openIndex opens the leveldb index with checksums verified on every read.
// If leveldb reports corruption it rebuilds the manifest from the tables
// (leveldb.Recover) and says so in the log. The index runs on
// syncedJournals over the storage (cfg.Storage, or the files under path);
// closer, if not nil, closes the files after the DB (leveldb.OpenFile
// would do that itself, but it cannot be given a wrapped storage).
func openIndex(cfg Config, path string) (db *leveldb.DB, j *syncedJournals, closer func() error, err error) {
	o := &opt.Options{
		Strict: opt.StrictJournalChecksum | opt.StrictBlockChecksum,
		// Values are already zstd-compressed where that pays.
		Compression: opt.NoCompression,
		// Small objects make the index write-heavy: a larger memtable and
		// larger tables mean fewer, bigger compactions (measured in
		// docs/performance.md). Memory: up to 2 x WriteBuffer per store.
		WriteBuffer:            32 << 20,
		CompactionTableSize:    8 << 20,
		CompactionL0Trigger:    8,
		WriteL0SlowdownTrigger: 16,
		WriteL0PauseTrigger:    24,
		BlockCacheCapacity:     32 << 20,
		// Every put first asks whether the object is already there, and
		// the answer is usually no: a bloom filter answers that from memory
		// instead of a read per level.
		Filter: filter.NewBloomFilter(10),
	}
	if cfg.indexWriteBuffer != 0 {
		o.WriteBuffer = cfg.indexWriteBuffer
	}
	stor := cfg.Storage
	if stor == nil {
		fs, err := storage.OpenFile(path, false)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("store: open index %s: %w", path, err)
		}
		stor, closer = fs, fs.Close
	}
	j = &syncedJournals{Storage: stor, sync: !cfg.NoSync}
	db, err = leveldb.Open(j, o)
	if lerrors.IsCorrupted(err) {
		cfg.Logger.Warn("index is corrupt; recovering it from its tables", "path", path, "err", err)
		db, err = leveldb.Recover(j, o)
		if err == nil {
			cfg.Logger.Warn("index recovered from its tables and journals", "path", path)
		}
	}
	if err != nil {
		if closer != nil {
			closer()
		}
		return nil, nil, nil, fmt.Errorf("store: open index %s: %w", path, err)
	}
	return db, j, closer, nil
}

// syncedJournals is the index's storage with one change: a journal file is
// fsync'd when goleveldb closes it. goleveldb v1.0.0 does not sync the
// journal it rotates away from when a memtable fills (db_state.go newMem:
// Reset, then Close): the unsynced writes in it become durable only once
// that memtable's table is written. A synced write in the new journal
// would then not make the earlier writes durable, which the store's
// unsynced put index writes rely on (vlog.go, "The log of record"). A
// failed fsync there is kept in failed, since goleveldb ignores the error
// of that Close: every later index write (writeBatch) and checkpoint
// (moveCheckpoint) is refused with it.
type syncedJournals struct {
	storage.Storage
	sync   bool
	mu     sync.Mutex
	failed error
}

func (j *syncedJournals) Create(fd storage.FileDesc) (storage.Writer, error) {
	w, err := j.Storage.Create(fd)
	if err != nil || fd.Type != storage.TypeJournal || !j.sync {
		return w, err
	}
	return &syncOnClose{Writer: w, j: j}, nil
}

// err returns the failed fsync of a rotated journal, if any.
func (j *syncedJournals) err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.failed
}

type syncOnClose struct {
	storage.Writer
	j *syncedJournals
}

func (w *syncOnClose) Close() error {
	if err := w.Writer.Sync(); err != nil {
		w.j.mu.Lock()
		if w.j.failed == nil {
			w.j.failed = fmt.Errorf("store: index journal sync: %w", err)
		}
		w.j.mu.Unlock()
		w.Writer.Close()
		return err
	}
	return w.Writer.Close()
}

// has reports whether oid is indexed.
func (s *Store) has(oid objid.OID) (bool, error) {
	if !s.mayHave(oid) {
		return false, nil
	}
	ok, err := s.db.Has(objectKey(oid), nil)
	if err != nil {
		return false, s.indexError("put", oid, err)
	}
	return ok, nil
}

// errDamagedEntry: an o/ value that does not split (splitEntry).
var errDamagedEntry = errors.New("damaged index entry")

// indexed reads oid's o/ entry from the index and splits it: the error is
// leveldb.ErrNotFound without one, and wraps errDamagedEntry for one that
// does not split.
func (s *Store) indexed(oid objid.OID) (body []byte, size int64, stamp objid.Stamp, err error) {
	v, err := s.db.Get(objectKey(oid), nil)
	if err != nil {
		return nil, 0, 0, err
	}
	if body, size, stamp, err = splitEntry(v); err != nil {
		return nil, 0, 0, fmt.Errorf("%w: %v", errDamagedEntry, err)
	}
	return body, size, stamp, nil
}

// indexedBody is the body of oid's o/ entry (indexed).
func (s *Store) indexedBody(oid objid.OID) ([]byte, error) {
	body, _, _, err := s.indexed(oid)
	return body, err
}

// countObjects sets Stats from the o/ entries' trailers. With the value
// log an entry is a pointer, so this reads a fraction of the index, never
// the object bytes (objects stored inline, with NoValueLog, are read with
// their entries).
func (s *Store) countObjects() error {
	it := s.db.NewIterator(util.BytesPrefix([]byte(objectPrefix)), nil)
	defer it.Release()
	var n, bytes int64
	for it.Next() {
		_, size, _, err := splitEntry(it.Value())
		if err != nil {
			s.log.Error("malformed index entry; not counted", "key", string(it.Key()), "err", err)
			continue
		}
		n++
		bytes += size
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: count objects: %w", err)
	}
	s.objects.Store(n)
	s.bytes.Store(bytes)
	return nil
}

// sweepOrphans deals with object files that no index entry names, left by
// a crash between a put's rename and its index write, or by an index that
// leveldb.Recover rebuilt without some recent entries: a file that verifies
// is indexed again, any other is removed.
func (s *Store) sweepOrphans() error {
	shards, err := os.ReadDir(s.paths.objectsDir())
	if err != nil {
		return fmt.Errorf("store: sweep: %w", err)
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			s.log.Warn("unexpected file in the objects directory; left alone", "name", sh.Name())
			continue
		}
		if err := s.sweepShard(filepath.Join(s.paths.objectsDir(), sh.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) sweepShard(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: sweep: %w", err)
	}
	for _, e := range entries {
		oid, err := objid.Parse(e.Name())
		if err != nil || filepath.Join(s.paths.objectsDir(), shard(oid)) != dir {
			s.log.Warn("unexpected file in the objects directory; left alone", "path", filepath.Join(dir, e.Name()))
			continue
		}
		if err := s.sweepFile(oid); err != nil {
			return fmt.Errorf("store: sweep %s: %w", oid, err)
		}
	}
	return nil
}

func (s *Store) sweepFile(oid objid.OID) error {
	v, err := s.indexedBody(oid)
	switch {
	case err == nil && (v[0] == codecFileRaw || v[0] == codecFileZstd):
		return nil
	case err == nil:
		s.log.Warn("removing object file of an object stored inline", "oid", oid.String())
		return removeIfPresent(s.paths.objectPath(oid))
	case errors.Is(err, leveldb.ErrNotFound):
		return s.adopt(oid)
	case lerrors.IsCorrupted(err) || errors.Is(err, errDamagedEntry):
		s.log.Error("index entry unreadable; object file left alone", "oid", oid.String(), "err", err)
		return nil
	}
	return err
}

// adopt indexes an object file that has no index entry if it verifies as
// zstd or raw, and removes it otherwise.
func (s *Store) adopt(oid objid.OID) error {
	path := s.paths.objectPath(oid)
	if _, deleted, err := s.tombstone(oid); err != nil || deleted {
		s.log.Warn("removing object file of a deleted object", "oid", oid.String())
		return removeIfPresent(path)
	}
	var errs []error
	for _, codec := range []byte{codecFileZstd, codecFileRaw} {
		size, err := s.measure(path, oid, codec)
		if err == nil {
			s.log.Warn("indexing verified object file that had no index entry", "oid", oid.String(), "size", size)
			_, err = s.commit(oid, size, 0, fileEntry(codec, size), nil)
			return err
		}
		errs = append(errs, err)
	}
	s.log.Warn("removing object file without index entry that fails verification", "oid", oid.String(), "err", errors.Join(errs...))
	return removeIfPresent(path)
}

// measure reads the file at path as codec and returns the object's size if
// it hashes to oid.
func (s *Store) measure(path string, oid objid.OID, codec byte) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, release, err := decodeFile(f, codec)
	if err != nil {
		return 0, err
	}
	defer release()
	h := objid.NewHasher(oid.Algorithm())
	n, err := io.Copy(h, io.LimitReader(r, s.cfg.MaxObjectSize+1))
	switch {
	case err != nil:
		return 0, err
	case n > s.cfg.MaxObjectSize:
		return 0, fmt.Errorf("more than MaxObjectSize %d bytes", s.cfg.MaxObjectSize)
	}
	return n, objid.Check(oid, h)
}
