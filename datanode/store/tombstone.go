package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stratum-store/stratum/api/objid"
)

// Deletes and stamps. Every write and delete carries an objid.Stamp; for one
// OID the store keeps either a copy (o/, the stamp of the newest write in
// its trailer) or a tombstone (t/), never both. The rules, applied under
// the OID's stripe lock:
//
//   - a write over a tombstone is applied only if its stamp is higher (the
//     object is stored again and the tombstone goes); otherwise it fails
//     with ErrSuperseded and nothing is written;
//   - a write over an intact copy raises the copy's stamp if it is higher
//     and writes nothing else;
//   - a delete over a copy is applied only if its stamp is higher (ties go
//     to the delete); otherwise ErrSuperseded;
//   - a delete over a tombstone keeps the higher stamp.
//
// So replicas that receive the same writes and deletes in any order end in
// the same state, and a copy sent by repair (stamp 0, or an old stamp)
// never brings a deleted object back.
//
// A tombstone also records a caller time (an opaque int64: the datanode
// uses a clock that a wall-clock jump cannot move) that ExpireTombstones
// compares, so the store itself reads no clock.

func tombKey(oid objid.OID) []byte { return []byte(tombPrefix + oid.String()) }

func tombValue(stamp objid.Stamp, at int64) []byte {
	v := binary.AppendUvarint(nil, uint64(stamp))
	return binary.AppendUvarint(v, uint64(at))
}

func parseTomb(v []byte) (objid.Stamp, int64, error) {
	st, k := binary.Uvarint(v)
	if k <= 0 {
		return 0, 0, errors.New("malformed tombstone")
	}
	at, k2 := binary.Uvarint(v[k:])
	if k2 <= 0 || k+k2 != len(v) {
		return 0, 0, errors.New("malformed tombstone time")
	}
	return objid.Stamp(st), int64(at), nil
}

// StampError reports a stamp that decided an operation: Kind is
// ErrDeleted (a read found a tombstone) or ErrSuperseded (a write or
// delete lost to what is stored); Stamp is the stored stamp and Deleted
// whether that is a tombstone.
type StampError struct {
	Kind    error
	Stamp   objid.Stamp
	Deleted bool
}

func (e *StampError) Error() string {
	what := "a copy"
	if e.Deleted || e.Kind == ErrDeleted {
		what = "a tombstone"
	}
	return fmt.Sprintf("%v: %s with stamp %d is stored", e.Kind, what, e.Stamp)
}

// Is makes a *StampError match its Kind, and ErrDeleted also ErrNotFound.
func (e *StampError) Is(target error) bool {
	return target == e.Kind || (e.Kind == ErrDeleted && target == ErrNotFound)
}

// StampOf returns the stored stamp an error reports, if it is a *StampError.
func StampOf(err error) (objid.Stamp, bool) {
	if se, ok := errors.AsType[*StampError](err); ok {
		return se.Stamp, true
	}
	return 0, false
}

// Entry is what the index holds for one OID: a copy (Size, Stamp) or a
// tombstone (Deleted, Stamp, At).
type Entry struct {
	OID     objid.OID
	Size    int64
	Stamp   objid.Stamp
	Deleted bool
	At      int64 // a tombstone's caller time
}

// Meta returns the index entry of oid: its copy or its tombstone, without
// reading or verifying the bytes; ErrNotFound when there is neither.
func (s *Store) Meta(ctx context.Context, oid objid.OID) (Entry, error) {
	end, err := s.begin(ctx, oid)
	if err != nil {
		return Entry{}, err
	}
	defer end()
	return s.metaIndexed(oid)
}

// meta is metaIndexed behind the OID filter, for the write paths, which
// mostly ask about objects that are not here. Meta, which readers call
// about objects that mostly are, reads the index directly: the filter
// would only add its check (docs/performance.md, "Third round").
func (s *Store) meta(oid objid.OID) (Entry, error) {
	if !s.mayHave(oid) {
		return Entry{}, s.indexError("stat", oid, leveldb.ErrNotFound)
	}
	return s.metaIndexed(oid)
}

// metaIndexed reads oid's entry, or its tombstone, from the entry
// cache or else the index.
func (s *Store) metaIndexed(oid objid.OID) (Entry, error) {
	e, ok, gen := s.entries.lookup(oid)
	if ok {
		return e, nil
	}
	e, err := s.metaRead(oid)
	if err == nil {
		s.entries.fill(e, gen)
	}
	return e, err
}

// metaRead reads oid's entry (its size and stamp: splitEntry), or its
// tombstone, from the index (both from one snapshot: settled, get.go).
func (s *Store) metaRead(oid objid.OID) (Entry, error) {
	v, tomb, err := s.settled(oid, objectKey(oid))
	switch {
	case err != nil:
		return Entry{}, s.indexError("stat", oid, err)
	case tomb != nil:
		stamp, at, err := parseTomb(tomb)
		if err != nil {
			return Entry{}, s.corrupt(oid, err)
		}
		return Entry{OID: oid, Stamp: stamp, Deleted: true, At: at}, nil
	}
	_, size, stamp, err := splitEntry(v)
	if err != nil {
		return Entry{}, s.corrupt(oid, err)
	}
	return Entry{OID: oid, Size: size, Stamp: stamp}, nil
}

// tombstone returns the stamp of oid's tombstone, if it has one.
func (s *Store) tombstone(oid objid.OID) (objid.Stamp, bool, error) {
	if !s.mayHave(oid) {
		return 0, false, nil
	}
	v, err := s.db.Get(tombKey(oid), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.indexError("put", oid, err)
	}
	return s.tombStamp(oid, v), true, nil
}

// tombStamp is the stamp of tombstone value v; a malformed one counts as
// stamp 0 (and is logged).
func (s *Store) tombStamp(oid objid.OID, v []byte) objid.Stamp {
	stamp, _, err := parseTomb(v)
	if err != nil {
		s.log.Error("malformed tombstone; treated as stamp 0", "oid", oid.String(), "err", err)
	}
	return stamp
}

// Delete replaces the copy of oid with a tombstone carrying stamp and the
// caller time at, durably (one synced batch; a large object's file is
// removed after it). It applies the rules above: a copy with a stamp at
// least as high stays and the error is a *StampError wrapping
// ErrSuperseded. deleted reports whether a copy was removed.
func (s *Store) Delete(ctx context.Context, oid objid.OID, stamp objid.Stamp, at int64) (deleted bool, err error) {
	unlock, err := s.lockObject(ctx, oid)
	if err != nil {
		return false, err
	}
	defer unlock()
	e, err := s.meta(oid)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil && !errors.Is(err, ErrCorrupt):
		return false, err
	case e.Deleted && e.Stamp >= stamp:
		return false, nil
	case !e.Deleted && e.Stamp >= stamp && err == nil:
		return false, &StampError{Kind: ErrSuperseded, Stamp: e.Stamp}
	}
	b := new(leveldb.Batch)
	dropped := s.dropEntries(b, oid)
	b.Put(tombKey(oid), tombValue(stamp, at))
	if err := s.writeIndex(b); err != nil {
		return false, fmt.Errorf("store: delete %s: %w", oid, err)
	}
	dropped()
	live := err == nil && !e.Deleted
	if live {
		s.dropCopy(oid, e.Size)
	}
	return live, nil
}

// Remove drops the local copy of oid without leaving a tombstone: the
// object is not deleted, this node just no longer keeps it (a rebalanced
// copy whose new owners hold theirs). Removing an absent object is not an
// error.
func (s *Store) Remove(ctx context.Context, oid objid.OID) error {
	unlock, err := s.lockObject(ctx, oid)
	if err != nil {
		return err
	}
	defer s.maybeCheckpoint() // after unlock: a checkpoint past the marker retires it
	defer unlock()
	e, err := s.meta(oid)
	if errors.Is(err, ErrNotFound) || (err == nil && e.Deleted) {
		return nil
	}
	b := new(leveldb.Batch)
	dropped := s.dropEntries(b, oid)
	marked := s.markRemoved(b, oid)
	if werr := s.writeIndex(b); werr != nil {
		return fmt.Errorf("store: remove %s: %w", oid, werr)
	}
	dropped()
	marked()
	s.dropCopy(oid, e.Size)
	return nil
}

// dropCopy removes a large object's file, if any, after its index entries
// went, and updates the counts. A crash before the file is gone leaves an
// orphan that Open removes (adopt checks for a tombstone) or re-indexes
// (after Remove, which is harmless: a spare copy).
func (s *Store) dropCopy(oid objid.OID, size int64) {
	if err := removeIfPresent(s.paths.objectPath(oid)); err != nil {
		s.log.Error("cannot remove object file", "oid", oid.String(), "err", err)
	}
	s.objects.Add(-1)
	s.bytes.Add(-size)
}

// RangeTombstones calls fn with every tombstone, in OID order, until fn
// returns false or ctx is done.
func (s *Store) RangeTombstones(ctx context.Context, fn func(Entry) bool) error {
	return s.scanPrefix(ctx, tombPrefix, func(oid objid.OID, v []byte) (bool, error) {
		stamp, at, err := parseTomb(v)
		return err == nil && !fn(Entry{OID: oid, Stamp: stamp, Deleted: true, At: at}), err
	})
}

// RangeEntries calls fn with every copy (with its stamp) and then every
// tombstone, until fn returns false or ctx is done.
func (s *Store) RangeEntries(ctx context.Context, fn func(Entry) bool) error {
	stopped := false
	err := s.RangeCopies(ctx, func(e Entry) bool {
		stopped = !fn(e)
		return !stopped
	})
	if err != nil || stopped {
		return err
	}
	return s.RangeTombstones(ctx, fn)
}

// ExpireTombstones removes the tombstones whose caller time is before
// `before` and returns how many went. After that a copy sent by repair is
// stored again, so callers keep tombstones longer than any copy can take
// to arrive (docs/repair.md, "Deletes"). It works a page of at most
// expirePage tombstones at a time, resuming after the last one, so its
// memory does not grow with the store (issue 15).
func (s *Store) ExpireTombstones(ctx context.Context, before int64) (int, error) {
	defer s.maybeCheckpoint() // a checkpoint past the markers retires them
	n := 0
	var after objid.OID
	for {
		page, err := s.oldTombstones(ctx, after, before, s.expirePage)
		if err != nil {
			return n, err
		}
		for _, oid := range page {
			if err := s.expireOne(ctx, oid, before); err != nil {
				return n, err
			}
			n++
		}
		if len(page) < s.expirePage {
			return n, nil
		}
		after = page[len(page)-1]
	}
}

// defaultExpirePage is how many tombstones ExpireTombstones holds at once.
const defaultExpirePage = 1024

// oldTombstones returns, in key order, at most max OIDs whose tombstone is
// older than before and whose key sorts after after's (all, if after is
// zero).
func (s *Store) oldTombstones(ctx context.Context, after objid.OID, before int64, max int) ([]objid.OID, error) {
	rng := util.BytesPrefix([]byte(tombPrefix))
	if !after.IsZero() {
		rng.Start = append(tombKey(after), 0)
	}
	it := s.db.NewIterator(rng, nil)
	defer it.Release()
	var page []objid.OID
	for len(page) < max && it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		oid, err := objid.Parse(string(it.Key()[len(tombPrefix):]))
		if err != nil {
			continue
		}
		if _, at, err := parseTomb(it.Value()); err == nil && at < before {
			page = append(page, oid)
		}
	}
	return page, it.Error()
}

func (s *Store) expireOne(ctx context.Context, oid objid.OID, before int64) error {
	unlock, err := s.lockObject(ctx, oid)
	if err != nil {
		return err
	}
	defer unlock()
	v, err := s.db.Get(tombKey(oid), nil)
	if err != nil {
		return nil // gone, or replaced by a copy
	}
	if _, at, err := parseTomb(v); err == nil && at >= before {
		return nil // renewed meanwhile
	}
	b := new(leveldb.Batch)
	b.Delete(tombKey(oid))
	marked := s.markRemoved(b, oid) // the tombstone no longer outranks older records
	if err := s.writeIndex(b); err != nil {
		return err
	}
	marked()
	return nil
}
