package store

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stratum-store/stratum/api/objid"
	"github.com/stratum-store/stratum/internal/planted"
)

// Garbage collection of the value log. A record becomes garbage when its
// index entry goes (Delete, Remove, Quarantine) or moves (a damaged copy
// replaced, or the collector moving it); a put that lost a race for an
// OID leaves one too. The store keeps, per segment, the bytes of records
// its index still points at ("live"): counted from the index at Open and
// kept up to date by every index write. CollectValueLog rewrites the live
// records of each sealed segment that is mostly garbage into the active
// segment, repoints their index entries (synced), and only then deletes
// the segment file. A crash in between leaves both copies, the index
// pointing at one of them: the other is garbage the next run collects.
//
// A Get that read a pointer into a segment the collector has just deleted
// finds the read failing and the index entry changed: it reads again (get).
//
// A record damaged in place (its bytes no longer match its checksum) is
// skipped by its length, as the replay does (replay.go), and the scan
// goes on. If the index still points at it, it stays live and keeps its
// segment until a put or repair replaces the copy; the next collection
// then deletes the segment. A torn header or a length no record can have
// ends the scan of a segment: what follows cannot be trusted as record
// boundaries, so the records after it are not moved and the accounting
// keeps the segment.

// GarbageRatio is the share of a sealed segment that must be garbage
// before CollectValueLog rewrites it.
const GarbageRatio = 0.5

// logLive is the per-segment accounting of live record bytes, and of
// pending appends: records appended but not yet indexed (or abandoned).
// A pending record is not live, since no index entry points at it yet, so
// the collector would find its segment all garbage and delete it under
// the put that is about to index it; a pending append therefore pins its
// segment (issue 15.3). The value log pins under its append lock, so a
// segment is pinned before it can be sealed; the writer unpins after its
// index write has counted the record live.
type logLive struct {
	mu    sync.Mutex
	bytes map[uint64]int64
	pins  map[uint64]int
	// pending holds the pinned positions themselves (an append's first
	// record), for the checkpoint (valueLog.lowWater): the oldest is the
	// oldest record whose index write has not returned.
	pending map[logPos]int
}

func (l *logLive) pin(p logPos) {
	l.mu.Lock()
	l.pins[p.seg]++
	l.pending[p]++
	l.mu.Unlock()
}

// unpin releases one pin taken by an append at p.
func (l *logLive) unpin(p logPos) {
	l.mu.Lock()
	if l.pins[p.seg]--; l.pins[p.seg] <= 0 {
		delete(l.pins, p.seg)
	}
	if l.pending[p]--; l.pending[p] <= 0 {
		delete(l.pending, p)
	}
	l.mu.Unlock()
}

// oldest returns the oldest pinned position, if any. The pending set is
// as large as the appends in flight (tens), so a walk is cheap.
func (l *logLive) oldest() (logPos, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first logPos
	found := false
	for p := range l.pending {
		if !found || p.less(first) {
			first, found = p, true
		}
	}
	return first, found
}

// collectible reports whether sealed segment seg has no live record and
// no pending append: then nothing points, or will point, into it.
func (l *logLive) collectible(seg uint64) (live int64, pending int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	live, pending = l.bytes[seg], l.pins[seg]
	if planted.GCIgnoresPending { // a negative control only (internal/planted)
		pending = 0
	}
	return live, pending, live == 0 && pending == 0
}

func recordBytes(p logPtr) int64 { return int64(recordHeader + p.n) }

// add counts p live (+1) or garbage (-1).
func (l *logLive) add(p logPtr, sign int64) {
	l.mu.Lock()
	l.bytes[p.seg] += sign * recordBytes(p)
	l.mu.Unlock()
}

func (l *logLive) get(seg uint64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes[seg]
}

// countLive fills s.live from the index's value log entries.
func (s *Store) countLive() error {
	s.live.bytes, s.live.pins, s.live.pending = map[uint64]int64{}, map[uint64]int{}, map[logPos]int{}
	it := s.db.NewIterator(util.BytesPrefix([]byte(objectPrefix)), nil)
	defer it.Release()
	for it.Next() {
		if v, _, _, err := splitEntry(it.Value()); err == nil && v[0] == codecLog {
			if p, err := parseLogEntry(v); err == nil {
				s.live.bytes[p.seg] += recordBytes(p)
			}
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: count value log: %w", err)
	}
	return nil
}

// indexedPtr returns oid's value log pointer if its index entry is one;
// callers hold oid's stripe lock.
func (s *Store) indexedPtr(oid objid.OID) (logPtr, bool) {
	p, _, _, ok := s.indexedLog(oid)
	return p, ok
}

// indexedLog is indexedPtr with the entry's size and stamp.
func (s *Store) indexedLog(oid objid.OID) (p logPtr, size int64, stamp objid.Stamp, ok bool) {
	v, size, stamp, err := s.indexed(oid)
	if err != nil || v[0] != codecLog {
		return logPtr{}, 0, 0, false
	}
	p, err = parseLogEntry(v)
	return p, size, stamp, err == nil
}

// dropEntries adds the deletion of oid's o/ entry to b and
// returns what to call once b is written: it counts a value log record
// the entry pointed at as garbage. Callers hold oid's stripe lock.
func (s *Store) dropEntries(b *leveldb.Batch, oid objid.OID) (written func()) {
	old, logged := s.indexedPtr(oid)
	b.Delete(objectKey(oid))
	return func() {
		if logged {
			s.live.add(old, -1)
		}
	}
}

// accountEntry counts an o/ value that was just written as live.
func (s *Store) accountEntry(v []byte) {
	if len(v) > 0 && v[0] == codecLog {
		if p, err := parseLogEntry(v); err == nil {
			s.live.add(p, 1)
		}
	}
}

// LogStats describes the value log.
type LogStats struct {
	Segments  int   // segment files
	Bytes     int64 // their total size (with the zeros ahead of the active segment's end: vlog.go)
	LiveBytes int64 // bytes of records the index points at
}

// ValueLogStats reports the value log's size and how much of it is live.
func (s *Store) ValueLogStats() (LogStats, error) {
	segs, err := listSegments(s.paths.vlogDir())
	if err != nil {
		return LogStats{}, err
	}
	var st LogStats
	for _, seg := range segs {
		fi, err := os.Stat(filepath.Join(s.paths.vlogDir(), segmentName(seg)))
		if err != nil {
			continue // collected meanwhile
		}
		st.Segments++
		st.Bytes += fi.Size()
		st.LiveBytes += s.live.get(seg)
	}
	return st, nil
}

// CollectValueLog rewrites the live records of every sealed segment that
// is at least GarbageRatio garbage and deletes the segment; it returns the
// bytes of segment files deleted. It stops early, without harm, when ctx
// ends. Concurrent calls run one after the other.
func (s *Store) CollectValueLog(ctx context.Context) (freed int64, err error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	// One collection at a time: two would rewrite and remove the same
	// segment, and the second removal fails.
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	segs, err := listSegments(s.paths.vlogDir())
	if err != nil {
		return 0, err
	}
	active, hasActive := s.vlog.activeSegment()
	for _, seg := range segs {
		if hasActive && seg >= active {
			continue
		}
		path := filepath.Join(s.paths.vlogDir(), segmentName(seg))
		fi, err := os.Stat(path)
		if err != nil {
			return freed, err
		}
		if live := s.live.get(seg); float64(live) > float64(fi.Size())*(1-GarbageRatio) {
			continue
		}
		if _, pending, _ := s.live.collectible(seg); pending > 0 {
			continue // a put is about to index a record there
		}
		if err := s.rewriteSegment(ctx, seg, path); errors.Is(err, errSegmentKept) {
			s.log.Warn("value log segment not collected", "segment", seg, "err", err)
			continue
		} else if err != nil {
			return freed, err
		}
		if err := s.vlog.remove(seg); err != nil {
			return freed, err
		}
		s.live.mu.Lock()
		delete(s.live.bytes, seg)
		s.live.mu.Unlock()
		freed += fi.Size()
		s.log.Info("value log segment collected", "segment", seg, "bytes", fi.Size())
	}
	return freed, nil
}

// gcChunk is how many records the collector moves per index write.
const gcChunk = 256

type gcRecord struct {
	oid        objid.OID
	ptr        logPtr
	value      []byte
	replayable bool        // a put's record, carrying its stamp (replay.go)
	stamp      objid.Stamp // the put's stamp, if replayable
}

// rewriteSegment moves every live record of segment seg to the active
// segment, gcChunk records at a time.
func (s *Store) rewriteSegment(ctx context.Context, seg uint64, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var chunk []gcRecord
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, n, err := readRecord(r, seg, off)
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errRecordDamaged) {
			// Damage inside a record whose length still reads as one: skip
			// it by that length and go on, as the replay does, so the live
			// records after it are moved and the segment can go. A copy
			// the index still points at here is not moved (it is damaged:
			// a read reports it, and repair replaces it), so the
			// accounting below keeps the segment until then. If the
			// length was damaged too, what follows fails its checksums or
			// parses as a record the index does not point at (by a 2^-32
			// chance, or because an object's bytes held a well-formed
			// record, which a writer can make: the checksum is no secret).
			// Neither is moved: moveRecords moves only a record the index
			// points at, by segment, offset and length.
			s.log.Warn("value log segment: skipped a damaged record", "segment", seg, "offset", off, "bytes", n)
			off += n
			continue
		}
		if err != nil {
			// A torn tail (a crash mid-append) or a damaged length: nothing
			// after it can be trusted as a record boundary. If the index still points
			// past here, the accounting below keeps the segment.
			s.log.Info("value log segment: scan stopped", "segment", seg, "offset", off, "err", err)
			break
		}
		off += n
		if rec.oid.IsZero() {
			continue
		}
		if chunk = append(chunk, rec); len(chunk) == gcChunk {
			if err := s.moveRecords(chunk); err != nil {
				return err
			}
			chunk = chunk[:0]
		}
	}
	if len(chunk) > 0 {
		if err := s.moveRecords(chunk); err != nil {
			return err
		}
	}
	// Records this pass did not move must not exist, and no put may be
	// about to index one: check the accounting and the pins.
	if live, pending, ok := s.live.collectible(seg); !ok {
		return fmt.Errorf("%w: segment %d still has %d live bytes and %d pending appends after its rewrite", errSegmentKept, seg, live, pending)
	}
	return nil
}

var errSegmentKept = errors.New("store: value log segment kept")

var errRecordDamaged = errors.New("record checksum mismatch")

// readRecord reads the record at off; a record whose payload does not
// parse to an OID comes back with a zero OID (garbage, skipped). io.EOF
// means the records end: the file does, or zeros written ahead do.
// errRecordDamaged comes with the record's length as read: its bytes do
// not match its checksum (a torn write, or damage since).
func readRecord(r *bufio.Reader, seg uint64, off int64) (gcRecord, int64, error) {
	var h [recordHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return gcRecord{}, 0, errors.New("torn record header")
		}
		return gcRecord{}, 0, err // io.EOF: the end
	}
	if h == [recordHeader]byte{} {
		// Zeros written ahead of the end (vlog.go, "Zeros ahead of the
		// end"): the records end here. No record's header is zero.
		return gcRecord{}, 0, io.EOF
	}
	n := binary.LittleEndian.Uint32(h[:])
	if int64(n) > MaxLargeThreshold+200 {
		return gcRecord{}, 0, fmt.Errorf("record length %d", n)
	}
	if n < minPayload { // a torn tail, never a record
		return gcRecord{}, 0, fmt.Errorf("record length %d is below any record's", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return gcRecord{}, 0, errors.New("torn record")
	}
	if crcOf(payload) != binary.LittleEndian.Uint32(h[4:]) {
		return gcRecord{}, int64(recordHeader + n), errRecordDamaged
	}
	rec := gcRecord{ptr: logPtr{seg: seg, off: off + recordHeader, n: int(n)}}
	if f, err := parsePayload(payload); err == nil {
		if oid, err := objid.Parse(f.hex); err == nil {
			rec.oid, rec.value, rec.replayable, rec.stamp = oid, f.value, f.replayable, f.stamp
		}
	}
	return rec, int64(recordHeader + n), nil
}

// minPayload is the shortest record payload: the length byte, a SHA-1's
// 40 hex digits and a one-byte value (the empty object, raw).
const minPayload = 1 + 40 + 1

// moveRecords appends the records of chunk that the index still points
// at to the active segment and repoints their entries, under their stripe
// locks (lockOIDs).
func (s *Store) moveRecords(chunk []gcRecord) error {
	locked := make([]objid.OID, len(chunk))
	for i, r := range chunk {
		locked[i] = r.oid
	}
	defer s.lockOIDs(locked)()
	var oids []objid.OID
	var values [][]byte
	var old []logPtr
	var sizes []int64
	var stamps []objid.Stamp
	for _, r := range chunk {
		if p, size, stamp, ok := s.indexedLog(r.oid); ok && p == r.ptr {
			oids, values, old = append(oids, r.oid), append(values, r.value), append(old, p)
			sizes, stamps = append(sizes, size), append(stamps, stamp)
		}
	}
	if len(oids) == 0 {
		return nil
	}
	ptrs, err := s.vlog.append(oids, values, nil)
	if err != nil {
		return err
	}
	defer s.live.unpin(ptrs[0].pos())
	b := new(leveldb.Batch)
	for i, oid := range oids {
		b.Put(objectKey(oid), entryValue(ptrs[i].entry(), sizes[i], stamps[i]))
	}
	if err := s.writeIndex(b); err != nil {
		return fmt.Errorf("store: value log collection: write index: %w", err)
	}
	for i := range ptrs {
		s.live.add(ptrs[i], 1)
		s.live.add(old[i], -1)
	}
	return nil
}
