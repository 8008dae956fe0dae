package store

import (
	"context"

	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stratum-store/stratum/api/objid"
)

// RangeEntriesFrom calls fn with every copy (or, with tombstones, every
// tombstone) whose OID string sorts at or after from and before to (to ""
// has no bound), in OID order, until fn returns false or ctx is done. It
// seeks to from, so it reads only the entries of the range: anti-entropy
// lists a bucket (a first OID byte) a page at a time with it.
func (s *Store) RangeEntriesFrom(ctx context.Context, tombstones bool, from, to string, fn func(Entry) bool) error {
	if tombstones {
		return s.scanRange(ctx, tombPrefix, from, to, func(oid objid.OID, v []byte) (bool, error) {
			stamp, at, err := parseTomb(v)
			return err == nil && !fn(Entry{OID: oid, Stamp: stamp, Deleted: true, At: at}), err
		})
	}
	return s.scanRange(ctx, objectPrefix, from, to, func(oid objid.OID, v []byte) (bool, error) {
		_, size, stamp, err := splitEntry(v)
		return err == nil && !fn(Entry{OID: oid, Size: size, Stamp: stamp}), err
	})
}

// scanRange walks the index keys under prefix from prefix+from up to (not
// including) prefix+to, or to the end of the prefix when to is "", handing
// each OID and value to fn as scanPrefix does.
func (s *Store) scanRange(ctx context.Context, prefix, from, to string, fn func(oid objid.OID, v []byte) (stop bool, err error)) error {
	r := util.BytesPrefix([]byte(prefix))
	r.Start = []byte(prefix + from)
	if to != "" {
		r.Limit = []byte(prefix + to)
	}
	it := s.db.NewIterator(r, nil)
	defer it.Release()
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		oid, err := objid.Parse(string(it.Key()[len(prefix):]))
		if err != nil {
			continue
		}
		if stop, err := fn(oid, it.Value()); err == nil && stop {
			return nil
		}
	}
	return it.Error()
}
