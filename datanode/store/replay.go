package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stratum-store/stratum/api/objid"
	"github.com/stratum-store/stratum/internal/planted"
)

// One fsync per put: the value log is the log of record of a plain put
// (vlog.go, "The log of record", states the rules). This file holds the
// three parts that make it sound: the checkpoint, the removal markers and
// the replay at Open.

const (
	// checkpointKey holds a log position (logPos.value): every record
	// before it has its index write durable, or is garbage.
	checkpointKey = "v/checkpoint"
	// markPrefix keys a removal marker: x/<oid> -> the log's end when the
	// copy was dropped. Records of the OID before it are not replayed.
	markPrefix = "x/"
	// defaultCheckpointEvery is how often an operation that wrote its
	// index unsynced, or wrote a removal marker, may write the checkpoint
	// (synced). It bounds the log a replay reads to about this much of
	// writes (or to the oldest put still in flight), and how long removal
	// markers live.
	defaultCheckpointEvery = time.Second
	// maxMarkersKept bounds the markers remembered for deletion with a
	// checkpoint; past it the rest wait for Close or the next Open.
	maxMarkersKept = 1 << 16
)

func markKey(oid objid.OID) []byte { return []byte(markPrefix + oid.String()) }

// unsynced is how a replayable put writes its index entries.
var unsynced = &opt.WriteOptions{}

// marker is a removal marker written in this run, to delete once a
// durable checkpoint is past it.
type marker struct {
	oid objid.OID
	pos logPos
}

// writePut writes a put's index batch b for oids. replayable says every
// copy b stores is a replayable value log record of this put, and b
// raises no stamp and replaces no copy: then the write need not be synced,
// unless one of oids has a removal marker. Such a put's record may be
// older than the marker (appended before the removal, indexed after it),
// and the replay skips records older than a marker, so its index write
// must not be lost. The marker stays: it still masks the OID's records
// from before the removal. Callers hold the stripes of oids.
func (s *Store) writePut(b *leveldb.Batch, oids []objid.OID, replayable bool) error {
	if !replayable || s.cfg.NoSync || s.cfg.NoValueLog {
		return s.writeIndex(b)
	}
	for _, oid := range oids {
		if s.hasMarker(oid) {
			return s.writeIndex(b)
		}
	}
	if err := s.writeBatch(b, unsynced); err != nil {
		return err
	}
	s.checkpointDue.Store(true)
	return nil
}

// hasMarker reports whether oid has a removal marker (or whether the
// index could not say).
func (s *Store) hasMarker(oid objid.OID) bool {
	if !s.mayHave(oid) {
		return false
	}
	_, err := s.db.Get(markKey(oid), nil)
	return !errors.Is(err, leveldb.ErrNotFound)
}

// markRemoved adds a removal marker for oid to b, a synced batch that
// drops oid's copy or tombstone; callers hold oid's stripe.
func (s *Store) markRemoved(b *leveldb.Batch, oid objid.OID) (written func()) {
	if s.vlog == nil || planted.NoRemovalMarker { // the latter a negative control only (internal/planted)
		return func() {}
	}
	pos := s.vlog.tail()
	b.Put(markKey(oid), pos.value())
	return func() {
		s.markMu.Lock()
		if len(s.markers) < maxMarkersKept {
			s.markers = append(s.markers, marker{oid, pos})
		}
		s.markMu.Unlock()
		s.checkpointDue.Store(true) // a checkpoint past the marker retires it
	}
}

// maybeCheckpoint writes the checkpoint if puts wrote unsynced, or
// removals wrote markers, since the last one, and s.checkpointEvery has
// passed. Callers hold no stripe and have ended their operation (it
// begins its own: closeMu is not taken twice).
func (s *Store) maybeCheckpoint() {
	if !s.checkpointDue.Load() || time.Since(time.Unix(0, s.checkpointAt.Load())) < s.checkpointEvery {
		return
	}
	if !s.checkpointMu.TryLock() {
		return // another operation is writing it
	}
	defer s.checkpointMu.Unlock()
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return
	}
	if err := s.checkpoint(); err != nil {
		s.log.Warn("value log checkpoint not written; the next Open replays more", "err", err)
	}
}

// checkpoint writes, synced, the checkpoint the log allows now and deletes
// the markers before it. Callers hold checkpointMu and no stripe.
func (s *Store) checkpoint() error {
	s.checkpointDue.Store(false)
	s.checkpointAt.Store(time.Now().UnixNano())
	pos := s.vlog.lowWater()
	if pos != s.vlog.tail() {
		defer s.checkpointDue.Store(true) // a put in flight holds it back: again later
	}
	s.markMu.Lock()
	var done, kept []marker
	for _, m := range s.markers {
		if !pos.less(m.pos) { // the checkpoint is at or past the marker
			done = append(done, m)
		} else {
			kept = append(kept, m)
		}
	}
	s.markers = kept
	s.markMu.Unlock()
	if len(kept) > 0 {
		defer s.checkpointDue.Store(true) // a later checkpoint retires them
	}
	oids := make([]objid.OID, len(done))
	for i, m := range done {
		oids[i] = m.oid
	}
	unlock := s.lockOIDs(oids)
	defer unlock()
	retired := map[string][]byte{}
	for _, m := range done {
		// A later removal may have written a newer marker for the OID:
		// that one stays.
		if v, err := s.db.Get(markKey(m.oid), nil); err == nil {
			if at, err := parseLogPos(v); err == nil && !pos.less(at) {
				retired[string(markKey(m.oid))] = v
			}
		}
	}
	if err := s.moveCheckpoint(pos, retired); err != nil {
		s.checkpointDue.Store(true)
		return err
	}
	return nil
}

// moveCheckpoint writes, synced, the checkpoint pos and the deletion of
// the markers retired (key to value). The checkpoint may only pass index
// writes that are durable, so it does not move once a rotated journal
// failed its fsync (syncedJournals): the writes in that journal may be
// lost, and the replay must still cover them. When that failure comes
// during this very write (a rotation it caused), the write is undone: the
// previous checkpoint and the markers are written back.
func (s *Store) moveCheckpoint(pos logPos, retired map[string][]byte) error {
	if err := s.journals.err(); err != nil {
		return fmt.Errorf("store: value log checkpoint: %w", err)
	}
	b := new(leveldb.Batch)
	b.Put([]byte(checkpointKey), pos.value())
	for k := range retired {
		b.Delete([]byte(k))
	}
	if err := s.db.Write(b, s.wo); err != nil {
		return fmt.Errorf("store: value log checkpoint: %w", err)
	}
	if err := s.journals.err(); err != nil {
		back := new(leveldb.Batch)
		back.Put([]byte(checkpointKey), s.checkpointPos.value())
		for k, v := range retired {
			back.Put([]byte(k), v)
		}
		if werr := s.db.Write(back, s.wo); werr != nil {
			s.log.Error("value log checkpoint could not be put back after a failed journal fsync; a power loss now may lose puts", "err", werr)
		}
		return fmt.Errorf("store: value log checkpoint: %w", err)
	}
	s.checkpointPos = pos
	return nil
}

// settleLog writes the checkpoint at the log's end and deletes every
// removal marker, synced: nothing before the end is to be replayed. Open
// calls it after the replay, Close before closing the index; no operation
// is in flight.
func (s *Store) settleLog() error {
	retired := map[string][]byte{}
	it := s.db.NewIterator(util.BytesPrefix([]byte(markPrefix)), nil)
	for it.Next() {
		retired[string(it.Key())] = append([]byte(nil), it.Value()...)
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: value log checkpoint: %w", err)
	}
	if err := s.moveCheckpoint(s.vlog.tail(), retired); err != nil {
		return err
	}
	s.checkpointAt.Store(time.Now().UnixNano())
	s.markMu.Lock()
	s.markers = nil
	s.markMu.Unlock()
	return nil
}

// replay applies again, at Open, the replayable records past the
// checkpoint (vlog.go, "The log of record"), then settles the log. Without
// a checkpoint it reads the whole log: a store written before checkpoints
// existed has no replayable record there (it synced every index write),
// and one whose checkpoint leveldb.Recover lost must not skip any.
func (s *Store) replay() error {
	var from logPos
	v, err := s.db.Get([]byte(checkpointKey), nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound): // from the start
	case err != nil:
		return fmt.Errorf("store: read the value log checkpoint: %w", err)
	default:
		if from, err = parseLogPos(v); err != nil {
			s.log.Error("value log checkpoint malformed; replaying the whole log", "err", err)
			from = logPos{}
		}
	}
	s.checkpointPos = from
	segs, err := listSegments(s.vlog.dir)
	if err != nil {
		return err
	}
	indexed := 0
	for _, seg := range segs {
		if seg < from.seg {
			continue
		}
		start := int64(0)
		if seg == from.seg {
			start = from.off
		}
		n, err := s.replaySegment(seg, start)
		indexed += n
		if err != nil {
			return err
		}
	}
	if indexed > 0 {
		s.log.Warn("value log replayed: puts whose index writes a crash dropped are indexed again", "objects", indexed, "from_segment", from.seg, "from_offset", from.off)
	}
	s.replayed = indexed
	return s.settleLog()
}

// replaySegment replays segment seg from offset start and returns how
// many records it indexed.
func (s *Store) replaySegment(seg uint64, start int64) (int, error) {
	f, err := os.Open(filepath.Join(s.vlog.dir, segmentName(seg)))
	if err != nil {
		return 0, fmt.Errorf("store: replay: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return 0, fmt.Errorf("store: replay: %w", err)
	}
	r := bufio.NewReaderSize(f, 1<<20)
	indexed := 0
	for off := start; ; {
		rec, n, err := readRecord(r, seg, off)
		if errors.Is(err, io.EOF) {
			return indexed, nil
		}
		if errors.Is(err, errRecordDamaged) {
			// The record's bytes do not match its checksum, but its length
			// read as a record's: skip it by that length and go on, or an
			// acknowledged put after it whose index write the power loss
			// dropped would be lost with it. A torn tail ends in the file's
			// end or in zeros just the same; if the length itself was
			// damaged, what follows reads as more damage or garbage, and a
			// replayed copy must verify against its OID besides
			// (replayRecord). An object's own bytes can hold a well-formed
			// record, though (the checksum is no secret): if the scan lands
			// on one, its copy still verifies, but its stamp is whatever the
			// record says and could outrank a tombstone. A known limit
			// (docs/consistency.md): it takes disk damage in a length, a
			// crash before the next checkpoint, and that landing.
			s.log.Warn("value log replay: skipped a damaged or torn record", "segment", seg, "offset", off, "bytes", n)
			off += n
			continue
		}
		if err != nil {
			// A torn header or a length no record has: the put it held was
			// never acknowledged, or the length is damaged. What follows
			// cannot be trusted as record boundaries (a length field is not
			// under the checksum, and an object's bytes may hold what looks
			// like a record), so it is not read.
			s.log.Info("value log replay: segment ends in a torn or damaged record", "segment", seg, "offset", off, "err", err)
			return indexed, nil
		}
		off += n
		if !rec.replayable || rec.oid.IsZero() {
			continue
		}
		ok, err := s.replayRecord(rec)
		if err != nil {
			return indexed, err
		}
		if ok {
			indexed++
		}
	}
}

// replayRecord applies rec's put again, as the put itself would now:
// nothing if a removal marker is after the record (the copy was dropped
// since); over a copy, a raise of its stamp to the record's if that is
// higher (of two racing puts the one that stored may have logged first);
// over a tombstone with a lower stamp, or nothing, the copy, if its bytes
// verify. Records are replayed in log order, which is the order their
// puts appended in.
func (s *Store) replayRecord(rec gcRecord) (bool, error) {
	oid := rec.oid
	if v, err := s.db.Get(markKey(oid), nil); err == nil {
		if at, err := parseLogPos(v); err != nil || rec.ptr.pos().less(at) {
			return false, nil // dropped after this record was written
		}
	}
	e, err := s.metaIndexed(oid)
	tomb := false
	switch {
	case err == nil && !e.Deleted && e.Stamp >= rec.stamp:
		return false, nil // indexed: its index write survived, or a later put's did
	case err == nil && !e.Deleted:
		b := new(leveldb.Batch)
		if _, err := s.restamp(b, oid, nil, e.Size, rec.stamp); err != nil {
			s.log.Error("value log replay: index entry unreadable; record skipped", "oid", oid.String(), "err", err)
			return false, nil
		}
		if err := s.db.Write(b, unsynced); err != nil { // made durable by settleLog's synced write
			return false, fmt.Errorf("store: replay %s: %w", oid, err)
		}
		return true, nil
	case err == nil && e.Stamp >= rec.stamp:
		return false, nil // deleted at least as late
	case err == nil:
		tomb = true
	case !errors.Is(err, ErrNotFound):
		s.log.Error("value log replay: index entry unreadable; record skipped", "oid", oid.String(), "err", err)
		return false, nil
	}
	data, err := s.codecs.decodeInline(rec.value)
	if err == nil {
		err = objid.Verify(oid, data)
	}
	if err != nil {
		s.log.Error("value log replay: record does not verify; skipped", "oid", oid.String(), "err", err)
		return false, nil
	}
	b := new(leveldb.Batch)
	if tomb {
		b.Delete(tombKey(oid))
	}
	b.Put(objectKey(oid), entryValue(rec.ptr.entry(), int64(len(data)), rec.stamp))
	if err := s.db.Write(b, unsynced); err != nil { // made durable by settleLog's synced write
		return false, fmt.Errorf("store: replay %s: %w", oid, err)
	}
	return true, nil
}
