package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stratum-store/stratum/api/objid"
)

// BatchItem is one small object of a PutBatch.
type BatchItem struct {
	OID  objid.OID
	Data []byte
	// Value, when not nil, is the object as Store.Encode made it (on this
	// node or on the coordinator): PutBatch stores Value as it came
	// instead of encoding the object again, so a coordinator compresses
	// an object once for all its replicas. Given without Data (from a
	// peer), it is decoded and the bytes verified like any other; given
	// with Data, it must be Encode(Data), which the caller made itself.
	Value []byte
	Stamp objid.Stamp // the write's stamp (tombstone.go); 0 for a plain copy
	// Verified says the caller hashed Data to OID itself, in this
	// process, and Data has not changed since: PutBatch does not hash it
	// again. A coordinator sets it on the items it verified before
	// storing its own copy (objects.Server.putItems), where the second
	// hash was 2 % of a Git push's CPU. Never set it for bytes that came
	// from elsewhere; an item that comes as a Value alone is always
	// verified once decoded.
	Verified bool
}

// BatchResult is one item's outcome: Err is nil when the copy is stored
// (Created) or was already present.
type BatchResult struct {
	Created bool
	Err     error
}

// PutBatch stores many small objects with one value log append and one
// index write, so a batch costs one fsync instead of one per object. Each object is verified
// like Put; an object that fails verification, or is larger than
// LargeThreshold, fails alone and the others are stored. Items are
// applied in order: an OID listed twice is two puts, one after the other,
// each with its own result.
//
// Lock order: PutBatch takes the stripe locks of all its objects in
// ascending stripe order, so two batches (or a batch and a Put, which takes
// one stripe) can never wait on each other in a cycle.
func (s *Store) PutBatch(ctx context.Context, items []BatchItem) ([]BatchResult, error) {
	out := make([]BatchResult, len(items))
	if len(items) == 0 {
		return out, nil
	}
	end, err := s.begin(ctx, items[0].OID)
	if err != nil {
		return nil, err
	}
	defer s.maybeCheckpoint() // after end and the stripes and pins are released
	defer end()
	for i, it := range items {
		if it.Value != nil && it.Data == nil {
			items[i].Verified = false // the bytes are decoded here: hashed below
			items[i].Data, out[i].Err = s.decodeItemValue(it)
			if out[i].Err != nil {
				continue
			}
		}
		out[i].Err = s.checkBatchItem(items[i])
	}
	var pinned pins
	defer pinned.release(&s.live) // after the index write counted the records live
	entries, err := s.logBatch(items, out, &pinned)
	if err != nil {
		return nil, err
	}
	unlock := s.lockStripes(items)
	defer unlock()
	b := new(leveldb.Batch)
	var added, bytes int64
	var written [][]byte // o/ values written, for the value log accounting
	var replaced []logPtr
	// done holds the stamp each OID has after the items already planned
	// that succeeded, and the entry body b writes for it, if any: a later
	// item of the same OID is a put over that copy (issue 15.4). An item
	// that failed leaves its OID out, so the next one is planned against
	// the index again.
	type planned struct {
		stamp objid.Stamp
		body  []byte // nil: b writes no entry for the OID; the index has it
	}
	done := map[objid.OID]planned{}
	// replayable: every write in b is a put of a replayable record
	// (replay.go); a stamp raise or a replaced copy must be synced.
	replayable := true
	var stored []objid.OID
	for i, it := range items {
		if out[i].Err != nil {
			continue
		}
		if prev, ok := done[it.OID]; ok {
			if it.Stamp > prev.stamp { // raises the stamp written by or for the earlier item
				body, err := s.restamp(b, it.OID, prev.body, int64(len(it.Data)), it.Stamp)
				if err != nil {
					out[i].Err = err
					continue
				}
				done[it.OID] = planned{stamp: it.Stamp, body: body}
				replayable = false
			}
			continue
		}
		before := b.Len()
		w, err := s.planWrite(ctx, b, it.OID, it.Stamp)
		if err != nil {
			out[i].Err = err
			continue
		}
		done[it.OID] = planned{stamp: w.stamp, body: w.body}
		if !w.store {
			if b.Len() != before {
				replayable = false // planWrite raised a stamp
			}
			continue
		}
		v := entries[i]
		if v == nil {
			if v, err = s.inlineOrLogged(it.OID, s.itemValue(it), it.Stamp, &pinned); err != nil {
				return nil, err
			}
		}
		if w.present { // a damaged copy being replaced: its record becomes garbage
			replayable = false
			if p, ok := s.indexedPtr(it.OID); ok {
				replaced = append(replaced, p)
			}
		}
		if v[0] != codecLog {
			replayable = false
		}
		stored = append(stored, it.OID)
		written = append(written, v)
		done[it.OID] = planned{stamp: w.stamp, body: v}
		b.Put(objectKey(it.OID), entryValue(v, int64(len(it.Data)), it.Stamp))
		out[i].Created = true
		if !w.present { // a damaged copy being replaced was counted already
			added, bytes = added+1, bytes+int64(len(it.Data))
		}
	}
	if b.Len() == 0 {
		return out, nil
	}
	if err := s.writePut(b, stored, replayable); err != nil {
		return nil, fmt.Errorf("store: batch of %d: write index: %w", added, err)
	}
	for _, v := range written {
		s.accountEntry(v)
	}
	for _, p := range replaced {
		s.live.add(p, -1)
	}
	s.objects.Add(added)
	s.bytes.Add(bytes)
	return out, nil
}

// logBatch appends, in one write and one fsync, the values of the items
// that passed their checks and have no copy here yet, and returns their
// index entries by position (nil for the others, whose o/ value
// inlineOrLogged makes if the commit must store them). The records'
// segment stays pinned (vloggc.go) until p is released.
func (s *Store) logBatch(items []BatchItem, out []BatchResult, p *pins) ([][]byte, error) {
	entries := make([][]byte, len(items))
	if s.cfg.NoValueLog {
		return entries, nil
	}
	oids := make([]objid.OID, 0, len(items))
	values := make([][]byte, 0, len(items))
	stamps := make([]objid.Stamp, 0, len(items))
	at := make([]int, 0, len(items))
	for i, it := range items {
		if out[i].Err != nil {
			continue
		}
		if e, err := s.meta(it.OID); err == nil && !e.Deleted {
			continue // probably present: logged only if commit must store it
		}
		oids, values, at = append(oids, it.OID), append(values, s.itemValue(it)), append(at, i)
		stamps = append(stamps, it.Stamp)
	}
	if len(values) == 0 {
		return entries, nil
	}
	ptrs, err := s.vlog.append(oids, values, stamps)
	if err != nil {
		return nil, fmt.Errorf("store: batch of %d: %w", len(values), err)
	}
	p.add(ptrs[0].pos())
	for k, i := range at {
		entries[i] = ptrs[k].entry()
	}
	return entries, nil
}

// inlineOrLogged returns the o/ value of an object whose inline value is
// v: a value log entry (the value appended and durable) or, without the
// value log, v itself.
func (s *Store) inlineOrLogged(oid objid.OID, v []byte, stamp objid.Stamp, p *pins) ([]byte, error) {
	if s.cfg.NoValueLog {
		return v, nil
	}
	return s.logValue(oid, v, stamp, p)
}

// Encode returns the inline value PutBatch stores for data (S2, or zstd
// with Config.ZstdValues, when that is smaller, raw otherwise), for BatchItem.Value. data must be at most
// LargeThreshold bytes for PutBatch to take it.
func (s *Store) Encode(data []byte) []byte { return s.codecs.encodeInline(data) }

// itemValue is the inline value of a checked item: the one it came with,
// or its Data encoded now.
func (s *Store) itemValue(it BatchItem) []byte {
	if it.Value != nil {
		return it.Value
	}
	return s.codecs.encodeInline(it.Data)
}

// decodeItemValue returns the object bytes of an item that came as a
// Value. A value that declares more than LargeThreshold bytes is refused
// before it is decoded, and none is decoded past what it declares, so a
// small frame cannot make a batch allocate without bound.
func (s *Store) decodeItemValue(it BatchItem) ([]byte, error) {
	size, err := inlineSize(it.Value)
	switch {
	case err != nil:
		return nil, fmt.Errorf("store: put %s: %w: %v", it.OID, ErrBadValue, err)
	case size > s.cfg.LargeThreshold:
		return nil, fmt.Errorf("store: put %s: %w: %d bytes is above the batch limit %d; put it alone", it.OID, ErrTooLarge, size, s.cfg.LargeThreshold)
	}
	data, err := s.codecs.decodeValue(it.Value, size)
	if err != nil {
		return nil, fmt.Errorf("store: put %s: %w: %v", it.OID, ErrBadValue, err)
	}
	return data, nil
}

func (s *Store) checkBatchItem(it BatchItem) error {
	// Only the zero OID can be invalid: every other was validated when it
	// was made (objid.Parse, objid.Digest). Parsing each OID again here
	// was 1 % of a git push's CPU.
	if it.OID.IsZero() {
		_, err := objid.Parse(it.OID.String())
		return fmt.Errorf("store: %w", err)
	}
	if int64(len(it.Data)) > s.cfg.LargeThreshold {
		return fmt.Errorf("store: put %s: %w: %d bytes is above the batch limit %d; put it alone", it.OID, ErrTooLarge, len(it.Data), s.cfg.LargeThreshold)
	}
	if it.Verified {
		return nil
	}
	if err := objid.Verify(it.OID, it.Data); err != nil {
		return fmt.Errorf("store: put %s: %w", it.OID, err)
	}
	return nil
}

// lockStripes locks the distinct stripes of items in ascending order and
// returns the function that unlocks them.
func (s *Store) lockStripes(items []BatchItem) func() {
	oids := make([]objid.OID, 0, len(items))
	for _, it := range items {
		if !it.OID.IsZero() { // a zero OID was refused by checkBatchItem; nothing to lock
			oids = append(oids, it.OID)
		}
	}
	return s.lockOIDs(oids)
}

// lockOIDs locks the distinct stripes of oids in ascending order and
// returns the function that unlocks them. Every caller that holds more
// than one stripe takes them this way, so two can never wait on each
// other in a cycle.
func (s *Store) lockOIDs(oids []objid.OID) func() {
	idx := make([]int, 0, len(oids))
	for _, oid := range oids {
		i, _ := strconv.ParseUint(shard(oid), 16, 8)
		idx = append(idx, int(i))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		s.stripes[i].Lock()
	}
	return func() {
		for _, i := range idx {
			s.stripes[i].Unlock()
		}
	}
}

// HasMany reports, for each OID, whether a copy is indexed here (without
// reading or verifying it).
func (s *Store) HasMany(ctx context.Context, oids []objid.OID) ([]bool, error) {
	out := make([]bool, len(oids))
	for i, oid := range oids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ok, err := s.has(oid)
		if err != nil {
			return nil, err
		}
		out[i] = ok
	}
	return out, nil
}
