package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stratum-store/stratum/api/objid"
)

// The index of a store written before 2026-12-07 kept two keys per
// object: o/<oid> with the body alone and s/<oid> with the size and
// stamp (sizeValue). Since then the o/ entry carries both in its trailer
// (codec.go) and there is no s/ key. migrate, called by Open before
// anything else reads the index, folds each old pair into one entry:
//
//	o/<oid> = body              o/<oid> = body + size + stamp
//	s/<oid> = size, stamp   ->  (deleted)
//
// The key f/format records how far a store is:
//
//	absent       the old format, or a new store (no o/ or s/ key at all,
//	             which is marked "2" at once)
//	"converting" step 1 is done; step 2 is under way
//	"2"          one key per object: nothing to do
//
// Step 1 gives every old o/ entry that has no s/ key one (size read from
// the body, stamp 0). The old format wrote both keys in one batch, but
// leveldb.Recover, which Open runs on a damaged index, can lose one key
// range and keep the other; the old code still served such a copy, and
// without this step its body would be read as if it ended in a trailer.
// Step 2 converts each pair in one batch. A crash in step 1 repeats it
// (it only adds s/ keys, and only to entries of the old format, the only
// kind there is then); a crash in step 2 resumes it, an entry's format
// being told by its s/ key. The marker moves in the batch that ends its
// step, so it never runs ahead of the entries.
//
// An entry whose size cannot be read at all (a damaged s/ value and a
// body that declares none, or a value log record that does not read)
// loses its entry with an error logged, as leveldb.Recover might lose it:
// repair brings the copy back from the other replicas (a large object's
// file is indexed again by the sweep that follows Open's replay, if it
// verifies). A damaged s/ value otherwise keeps its copy with the size
// read from the body and stamp 0: a delete with any stamp then wins over
// it, which the old format's damaged entry could not tell either.
//
// The change is one-way: a binary from before it finds no s/ keys and
// reads the trailers as part of the bodies.

// formatKey holds the index format (migrate).
const formatKey = "f/format"

const (
	formatConverting = "converting"
	formatOneKey     = "2"
)

// migrateOps and migrateBytes bound one synced write of migrate: inline
// entries (NoValueLog) can be as large as LargeThreshold.
var (
	migrateOps   = 4096
	migrateBytes = 8 << 20
)

// migrate brings the index to one key per object; it reports how many
// objects it converted.
func (s *Store) migrate() (int, error) {
	format, err := s.db.Get([]byte(formatKey), nil)
	switch {
	case err == nil && string(format) == formatOneKey:
		return 0, nil
	case err == nil && string(format) == formatConverting:
	case err == nil:
		return 0, fmt.Errorf("store: index format %q is not one this version reads", format)
	case !errors.Is(err, leveldb.ErrNotFound):
		return 0, fmt.Errorf("store: read the index format: %w", err)
	default:
		if !s.hasKeys(objectPrefix) && !s.hasKeys(sizePrefix) {
			return 0, s.setFormat(formatOneKey) // a new store
		}
		if err := s.giveSizes(); err != nil {
			return 0, err
		}
	}
	return s.foldSizes()
}

func (s *Store) hasKeys(prefix string) bool {
	it := s.db.NewIterator(util.BytesPrefix([]byte(prefix)), nil)
	defer it.Release()
	return it.Next()
}

func (s *Store) setFormat(f string) error {
	b := new(leveldb.Batch)
	b.Put([]byte(formatKey), []byte(f))
	if err := s.db.Write(b, s.wo); err != nil {
		return fmt.Errorf("store: write the index format: %w", err)
	}
	return nil
}

// migrateWriter writes a migration's changes in bounded synced batches.
type migrateWriter struct {
	s     *Store
	b     leveldb.Batch
	bytes int
}

func (w *migrateWriter) put(k, v []byte) error {
	w.b.Put(k, v)
	w.bytes += len(k) + len(v)
	return w.maybeFlush()
}

func (w *migrateWriter) delete(k []byte) error {
	w.b.Delete(k)
	w.bytes += len(k)
	return w.maybeFlush()
}

func (w *migrateWriter) maybeFlush() error {
	if w.b.Len() < migrateOps && w.bytes < migrateBytes {
		return nil
	}
	return w.flush()
}

func (w *migrateWriter) flush() error {
	if w.b.Len() == 0 {
		return nil
	}
	if err := w.s.db.Write(&w.b, w.s.wo); err != nil {
		return fmt.Errorf("store: convert the index to one key per object: %w", err)
	}
	w.b.Reset()
	w.bytes = 0
	return nil
}

// finish writes what is left with the format marker f.
func (w *migrateWriter) finish(f string) error {
	w.b.Put([]byte(formatKey), []byte(f))
	return w.flush()
}

// giveSizes is step 1: an s/ key for every o/ entry without one. It walks
// the o/ and s/ keys side by side (both in OID order).
func (s *Store) giveSizes() error {
	w := &migrateWriter{s: s}
	oit := s.db.NewIterator(util.BytesPrefix([]byte(objectPrefix)), nil)
	defer oit.Release()
	sit := s.db.NewIterator(util.BytesPrefix([]byte(sizePrefix)), nil)
	defer sit.Release()
	more := sit.Next()
	for oit.Next() {
		hex := oit.Key()[len(objectPrefix):]
		for more && bytes.Compare(sit.Key()[len(sizePrefix):], hex) < 0 {
			more = sit.Next()
		}
		if more && bytes.Equal(sit.Key()[len(sizePrefix):], hex) {
			continue
		}
		oid, err := objid.Parse(string(hex))
		if err != nil {
			s.log.Warn("index conversion: an object key that names no OID; left alone", "key", string(oit.Key()))
			continue
		}
		size, err := s.bodySize(oid, oit.Value())
		if err != nil {
			s.log.Error("index conversion: an object entry without its size entry, and no size in it; the entry is dropped", "oid", oid.String(), "err", err)
			err = w.delete(objectKey(oid))
		} else {
			s.log.Warn("index conversion: an object entry without its size entry; size read from the object, stamp 0", "oid", oid.String())
			err = w.put(sizeKey(oid), sizeValue(size, 0))
		}
		if err != nil {
			return err
		}
	}
	if err := errors.Join(oit.Error(), sit.Error()); err != nil {
		return fmt.Errorf("store: convert the index to one key per object: %w", err)
	}
	return w.finish(formatConverting)
}

// foldSizes is step 2: each s/ key folded into its o/ entry.
func (s *Store) foldSizes() (int, error) {
	w := &migrateWriter{s: s}
	it := s.db.NewIterator(util.BytesPrefix([]byte(sizePrefix)), nil)
	defer it.Release()
	converted := 0
	for it.Next() {
		key := append([]byte(nil), it.Key()...)
		if err := w.delete(key); err != nil {
			return converted, err
		}
		oid, err := objid.Parse(string(key[len(sizePrefix):]))
		if err != nil {
			s.log.Warn("index conversion: a size key that names no OID; removed", "key", string(key))
			continue
		}
		body, err := s.db.Get(objectKey(oid), nil)
		switch {
		case errors.Is(err, leveldb.ErrNotFound):
			s.log.Warn("index conversion: a size entry without its object entry; removed", "oid", oid.String())
			continue
		case err != nil:
			return converted, fmt.Errorf("store: convert the index entry of %s: %w", oid, err)
		}
		size, stamp, err := parseSizeEntry(it.Value())
		if err != nil {
			if size, err = s.bodySize(oid, body); err != nil {
				s.log.Error("index conversion: size entry and object entry both unreadable; the entry is dropped", "oid", oid.String(), "err", err)
				if err := w.delete(objectKey(oid)); err != nil {
					return converted, err
				}
				continue
			}
			s.log.Error("index conversion: size entry damaged; size read from the object, stamp 0", "oid", oid.String())
			stamp = 0
		}
		if err := w.put(objectKey(oid), entryValue(body, size, stamp)); err != nil {
			return converted, err
		}
		converted++
	}
	if err := it.Error(); err != nil {
		return converted, fmt.Errorf("store: convert the index to one key per object: %w", err)
	}
	if err := w.finish(formatOneKey); err != nil {
		return converted, err
	}
	if converted > 0 {
		s.log.Info("index converted to one key per object", "objects", converted)
	}
	return converted, nil
}

// bodySize is the logical size an entry body (of the old format, without
// a trailer) declares: a file entry's, an inline value's, or that of the
// inline value a value log record holds.
func (s *Store) bodySize(oid objid.OID, body []byte) (int64, error) {
	if len(body) == 0 {
		return 0, errors.New("empty object entry")
	}
	switch body[0] {
	case codecFileRaw, codecFileZstd:
		_, size, err := parseFileEntry(body)
		return size, err
	case codecLog:
		v, err := s.logged(oid, body)
		if err != nil {
			return 0, err
		}
		return inlineSize(v)
	}
	return inlineSize(body)
}
