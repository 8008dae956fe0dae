package store

import (
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
// An object's two writes are one batch, and an old entry is told from a
// new one by its s/ key alone, so a crash during the migration leaves
// every object in one format or the other and the next Open carries on
// where it stopped. The change is one-way: a binary from before it would
// find no s/ keys and read the trailers as part of the bodies.
//
// An s/ key without its o/ entry (which no version writes) is dropped. A
// damaged s/ value keeps its copy with the size read from the body (a
// value log record is read for it) and stamp 0; a copy whose size cannot
// be read either loses its entry, as leveldb.Recover might lose it, and
// repair brings it back from the other replicas (a large object's file is
// indexed again by the sweep that follows, if it verifies).

// migrateBatch is how many objects one synced write of migrate converts.
const migrateBatch = 4096

// migrate folds the old format's s/ keys into the o/ entries; it reports
// how many objects it converted.
func (s *Store) migrate() (int, error) {
	it := s.db.NewIterator(util.BytesPrefix([]byte(sizePrefix)), nil)
	defer it.Release()
	b := new(leveldb.Batch)
	converted := 0
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		if err := s.db.Write(b, s.wo); err != nil {
			return fmt.Errorf("store: convert the index to one key per object: %w", err)
		}
		b.Reset()
		return nil
	}
	for it.Next() {
		key := append([]byte(nil), it.Key()...)
		b.Delete(key)
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
				s.log.Error("index conversion: size entry and object entry both unreadable; the copy's entry is dropped", "oid", oid.String(), "err", err)
				b.Delete(objectKey(oid))
				continue
			}
			s.log.Error("index conversion: size entry damaged; size read from the object, stamp 0", "oid", oid.String())
			stamp = 0
		}
		b.Put(objectKey(oid), entryValue(body, size, stamp))
		if converted++; converted%migrateBatch == 0 {
			if err := flush(); err != nil {
				return converted, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return converted, fmt.Errorf("store: convert the index to one key per object: %w", err)
	}
	if err := flush(); err != nil {
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
