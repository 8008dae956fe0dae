package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratum-store/stratum/api/objid"
)

// The value log keeps small objects' bytes out of leveldb (WiscKey, as in
// Badger): each put appends its encoded value to a segment file under
// <Dir>/vlog and indexes only a pointer (codecLog). Compaction then moves
// index entries of a few bytes instead of whole objects, which is what
// made writes slow down as the store grew (docs/performance.md).
//
// A segment is a sequence of records:
//
//	uint32 payload length, uint32 CRC-32C of the payload  (little endian)
//	payload: one byte n, the OID's n hex characters, the encoded value
//	         (a codecRaw, codecZstd or codecS2 inline value)
//
// or, for a put's record (a "replayable" one, whose index write is not
// synced; see "The log of record" below), n has its top bit set and the
// OID is followed by the put's stamp as a uvarint, then the value. The
// collector's moved records and records written before this format are
// of the first kind.
//
// Durability: a put appends its record, fsyncs the segment (concurrent
// puts share one fsync: whoever fsyncs covers everything written before
// it), and only then writes its index entry. The first write after each
// Open starts a new segment, so a record half-written by a crash is never
// appended to; it is garbage nothing points at. The OID in each record
// lets the collector (vlogGC) find a record's index entry.
//
// # The log of record
//
// A plain put's index write is not synced: the value log is the put's
// log of record, and one fsync (the segment's) makes the put durable. A
// power loss can then drop the tail of leveldb's journal, that is, the
// index writes of the last puts; Open applies their records again
// (replay.go). What makes that sound:
//
//   - Every write that must not be lost in this way is still synced
//     (deletes, removals, quarantine, expiry, stamp raises, replacing a
//     damaged copy, a put of an object with a removal marker, the
//     collector's moves, large objects, NoValueLog), and a synced write
//     makes every earlier index write durable too: within one journal
//     file by leveldb's design, and across a journal rotation because the
//     index's storage fsyncs a journal when goleveldb closes it
//     (syncedJournals, index.go; goleveldb itself does not). So what a
//     power loss drops is a suffix of unsynced put index writes.
//   - The checkpoint (key v/checkpoint, a log position, written synced)
//     bounds the replay: every record before it has its index write
//     durable, or is garbage. It is the oldest record whose index write
//     has not returned (logLive's pending positions), or the log's end.
//     An operation that wrote unsynced or wrote a marker writes it, synced,
//     at most once a second; Close and Open write it at the log's end.
//   - The replay applies each record's put again, in log order, as the
//     put would now: nothing if a removal marker is later than the
//     record; over a copy, a raise of its stamp if the record's is higher
//     (of two racing puts of one object, the one that stored may have
//     logged second); over a tombstone with a lower stamp, or over
//     nothing, the copy.
//   - A removal marker (x/<oid>, the log's end when written) is written,
//     synced, with every operation that drops a copy without leaving a
//     tombstone that outranks it: Remove, Quarantine, and a tombstone's
//     expiry. Without it, a removed copy whose record is past the
//     checkpoint would come back. A put that finds a marker for its OID
//     syncs its write (its record may be older than the marker: appended
//     before the removal, indexed after it) and leaves the marker, which
//     still masks the records from before the removal. A checkpoint at or
//     past a marker deletes it (of the first 65,536 markers since the last
//     Open or Close; the others stay until the next one).
//   - A record whose bytes fail their checksum (torn, or damaged since it
//     was written) is skipped by its length, and the replay goes on: an
//     acknowledged put after it may have only the replay to come back by.
//     A torn header or a length no record has ends the segment's replay:
//     past it, record boundaries cannot be trusted (the length is not
//     under the checksum, and an object's bytes may look like a record).
//     Only records written with a stamp (replayable ones) are
//     replayed; the collector's moved records and those written before
//     this format were indexed by synced writes.
//
// The replayable record is a format change: a binary from before it
// reads such records as damaged, so a store cannot go back to one.
//
// # Zeros ahead of the end
//
// An fsync of a file that grew must commit the file system's journal (the
// new size and blocks), and on ext4 that costs more than the data: 230 µs
// against 130 µs for a 4 KiB record on this project's machine, and the
// journal is shared by every file on the disk (docs/performance.md, "Zeros
// ahead"). So a synced log keeps the active segment's next zeroChunk bytes
// written with zeros ahead of its end: a record lands on blocks the file
// already has, and its fsync is an fdatasync that writes the data alone.
// The zeros cost one extra write of each byte, about one journal commit
// per half zeroChunk of records, and they make no difference to what a
// record needs to be durable: an fdatasync still flushes the size of a
// file it grew, so a record past the zeros (they could not be written: a
// full disk) is as durable as one on them. A header of zeros is where a
// segment's records end (readRecord); sealing a segment cuts the zeros off
// (rotate, and close unless the log failed; close does not sync the cut,
// so a crash may leave them), and a segment left by a crash keeps them
// until the collector takes it.
//
// What that costs: up to zeroChunk more disk per active segment, counted
// in ValueLogStats; a write that fails only later, at its fsync (delayed
// allocation running out of space on XFS or btrfs, a thin volume), fails
// the log at the next record's fdatasync, as any failed write does; and a
// lost sector that reads back as zeros where a record header was now reads
// as the end of that segment's records instead of as damage: the replay
// and the collector stop there as they did, without a log line (the
// collector still keeps a segment the index points past).

// Codec byte: codecLog, then uvarint segment, uvarint offset of the
// payload, uvarint payload length.

const codecLog byte = 4

// DefaultSegmentSize is the size at which the value log starts a new
// segment file.
const DefaultSegmentSize int64 = 128 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

const recordHeader = 8

// logPtr is where one record's payload is.
type logPtr struct {
	seg uint64
	off int64
	n   int
}

func (p logPtr) entry() []byte {
	v := binary.AppendUvarint([]byte{codecLog}, p.seg)
	v = binary.AppendUvarint(v, uint64(p.off))
	return binary.AppendUvarint(v, uint64(p.n))
}

func parseLogEntry(v []byte) (logPtr, error) {
	var p logPtr
	var k, used int
	var off, n uint64
	if p.seg, k = binary.Uvarint(v[1:]); k <= 0 {
		return p, errors.New("malformed value log pointer")
	}
	used = 1 + k
	if off, k = binary.Uvarint(v[used:]); k <= 0 || off > 1<<62 {
		return p, errors.New("malformed value log pointer")
	}
	used += k
	if n, k = binary.Uvarint(v[used:]); k <= 0 || used+k != len(v) || n > uint64(MaxLargeThreshold)+200 {
		return p, errors.New("malformed value log pointer")
	}
	p.off, p.n = int64(off), int(n)
	return p, nil
}

type valueLog struct {
	dir     string
	sync    bool
	segSize int64

	mu     sync.Mutex // appends: the active segment and its end
	active *os.File
	seg    uint64
	end    int64
	// zeroed is how far the active segment is written: records up to
	// end, zeros from there (zeroAhead). Without sync no zeros are
	// written, and it stays 0.
	zeroed int64
	// failed is the first write or fsync error: after it every append
	// fails until the store is reopened, because a later fsync that
	// succeeds does not prove that the pages of the failed one reached
	// the disk (Linux drops them). goleveldb keeps its errors the same way.
	failed error

	syncMu    sync.Mutex // one fsync at a time; the writers queued behind it usually find themselves covered
	syncedSeg uint64
	syncedEnd int64
	// Commit delay (syncTo): writers counts the appends under way, from
	// the start of append to its return (its fsync included); under
	// syncMu, syncs and delayed count fsyncs and the waits before them.
	commitDelay time.Duration
	writers     atomic.Int64
	syncs       uint64
	delayed     uint64

	filesMu sync.RWMutex
	files   map[uint64]*os.File // segments open for reading

	// syncFile makes a segment's bytes durable up to at least end (the
	// log's end when it was called: what a power loss must keep):
	// fdatasync, replaced by tests that make it fail or that model a disk.
	syncFile func(f *os.File, end int64) error

	// pins is the store's accounting (vloggc.go): every append pins its
	// segment under mu, before the segment can be sealed.
	pins *logLive
}

func segmentName(seg uint64) string { return fmt.Sprintf("%010d.vlog", seg) }

// openValueLog opens dir and starts a new segment after the existing ones.
func openValueLog(dir string, sync bool, segSize int64, pins *logLive) (*valueLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: value log: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	// The first append starts segment seg+1: a store opened and closed
	// without writing leaves no empty segment behind.
	l := &valueLog{dir: dir, sync: sync, segSize: segSize, files: map[uint64]*os.File{}, syncFile: datasync, pins: pins}
	if len(segs) > 0 {
		l.seg = segs[len(segs)-1]
	}
	return l, nil
}

// listSegments returns the segment numbers in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: value log: %w", err)
	}
	var segs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".vlog")
		if n, err := strconv.ParseUint(name, 10, 64); ok && err == nil {
			segs = append(segs, n)
		}
	}
	slices.Sort(segs)
	return segs, nil
}

// startSegment creates segment seg and makes it the active one; callers
// hold mu (or own l alone).
func (l *valueLog) startSegment(seg uint64) error {
	path := filepath.Join(l.dir, segmentName(seg))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("store: value log: %w", err)
	}
	if l.sync {
		if err := syncDir(l.dir); err != nil {
			f.Close()
			return err
		}
	}
	l.filesMu.Lock()
	l.files[seg] = f
	l.filesMu.Unlock()
	l.active, l.seg, l.end, l.zeroed = f, seg, 0, 0
	return nil
}

// zeroChunk is how many bytes of zeros a synced log writes ahead of the
// active segment's end at a time.
const zeroChunk = 1 << 20

var zeros = make([]byte, zeroChunk) // never written

// zeroAhead writes zeros after the record just appended, ending at need,
// when less than half of zeroChunk is left: up to zeroChunk past need,
// not past the segment size. Callers hold mu. The next fdatasync writes
// them out with the records before them.
//
// The zeros are only for speed: when they cannot be written (a full
// disk, say) the records go on as plain appends, which grow the file,
// and their fdatasync writes the size too. So a failure here fails
// nothing, and the next try is a chunk later.
func (l *valueLog) zeroAhead(need int64) {
	if !l.sync || need <= l.zeroed-zeroChunk/2 {
		return
	}
	from := max(need, l.zeroed)
	to := min(need+zeroChunk, max(l.segSize, need))
	if to <= from {
		return
	}
	l.active.WriteAt(zeros[:to-from], from) // an error: see above
	l.zeroed = to
}

// seal cuts the active segment's zeros off; callers hold mu. The caller
// syncs it (rotate) or does not need to (close: a crash leaves zeros,
// which read as the end of the records).
func (l *valueLog) seal() error {
	if l.active == nil || l.zeroed <= l.end {
		return nil
	}
	if err := l.active.Truncate(l.end); err != nil {
		return fmt.Errorf("store: value log: %w", err)
	}
	l.zeroed = l.end
	return nil
}

// append writes one record per value (oids[i], values[i]) and returns
// their pointers once they are durable. With stamps (one per value) the
// records are replayable: they carry the put's stamp, for Open to index
// them again (replay.go); without, they are plain. The records are in one
// segment, ptrs[0].seg, and the append has pinned the position of the
// first (logLive.pin): the caller unpins it once its index write is done
// or abandoned. On error nothing stays pinned.
func (l *valueLog) append(oids []objid.OID, values [][]byte, stamps []objid.Stamp) ([]logPtr, error) {
	size := 0
	for i := range values {
		size += recordHeader + 1 + len(oids[i].String()) + binary.MaxVarintLen64 + len(values[i])
	}
	buf := make([]byte, 0, size)
	ptrs := make([]logPtr, len(values))
	for i, v := range values {
		start := len(buf)
		hex := oids[i].String()
		buf = append(buf, make([]byte, recordHeader)...)
		if stamps != nil {
			buf = append(buf, byte(len(hex))|replayableFlag)
			buf = append(buf, hex...)
			buf = binary.AppendUvarint(buf, uint64(stamps[i]))
		} else {
			buf = append(buf, byte(len(hex)))
			buf = append(buf, hex...)
		}
		buf = append(buf, v...)
		payload := buf[start+recordHeader:]
		binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, crcTable))
		ptrs[i] = logPtr{off: int64(start + recordHeader), n: len(payload)}
	}
	l.writers.Add(1)
	defer l.writers.Add(-1)
	l.mu.Lock()
	if l.failed != nil {
		err := l.failed
		l.mu.Unlock()
		return nil, fmt.Errorf("store: value log failed earlier (reopen the store): %w", err)
	}
	if l.active == nil || (l.end > 0 && l.end+int64(len(buf)) > l.segSize) {
		if err := l.rotate(); err != nil {
			l.failed = err
			l.mu.Unlock()
			return nil, err
		}
	}
	seg, base := l.seg, l.end
	_, err := l.active.WriteAt(buf, base)
	if err == nil {
		l.zeroAhead(base + int64(len(buf)))
	}
	if err == nil {
		l.end += int64(len(buf))
		l.pins.pin(logPos{seg, base})
	} else {
		l.failed = err
	}
	end := l.end
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("store: value log append: %w", err)
	}
	for i := range ptrs {
		ptrs[i].seg, ptrs[i].off = seg, ptrs[i].off+base
	}
	if err := l.syncTo(seg, end); err != nil {
		l.pins.unpin(logPos{seg, base})
		return nil, err
	}
	return ptrs, nil
}

// pos is where the record of p starts (its header), as pinned.
func (p logPtr) pos() logPos { return logPos{p.seg, p.off - recordHeader} }

// logPos is a position in the value log: a segment and an offset in it.
type logPos struct {
	seg uint64
	off int64
}

func (a logPos) less(b logPos) bool { return a.seg < b.seg || (a.seg == b.seg && a.off < b.off) }

func (a logPos) value() []byte {
	return binary.AppendUvarint(binary.AppendUvarint(nil, a.seg), uint64(a.off))
}

func parseLogPos(v []byte) (logPos, error) {
	seg, k := binary.Uvarint(v)
	if k <= 0 {
		return logPos{}, errors.New("malformed log position")
	}
	off, k2 := binary.Uvarint(v[k:])
	if k2 <= 0 || k+k2 != len(v) || off > 1<<62 {
		return logPos{}, errors.New("malformed log position")
	}
	return logPos{seg, int64(off)}, nil
}

// endPos returns the position the next append starts at, or after: the
// active segment's end, or the start of the next segment when no append
// has started one since Open. Callers hold mu.
func (l *valueLog) endPos() logPos {
	if l.active == nil {
		return logPos{l.seg + 1, 0}
	}
	return logPos{l.seg, l.end}
}

// lowWater returns the checkpoint the log allows now: the oldest pinned
// (appended, not yet indexed) record, or the log's end. Every record
// before it has had its index write return, or was abandoned.
func (l *valueLog) lowWater() logPos {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := l.endPos()
	if p, ok := l.pins.oldest(); ok && p.less(end) {
		return p
	}
	return end
}

// tail returns the log's end now.
func (l *valueLog) tail() logPos {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.endPos()
}

// rotate seals the active segment (durably) and starts the next; callers
// hold mu.
func (l *valueLog) rotate() error {
	if err := l.seal(); err != nil {
		return err
	}
	if l.sync && l.active != nil {
		if err := l.syncFile(l.active, l.end); err != nil {
			return fmt.Errorf("store: value log sync: %w", err)
		}
	}
	return l.startSegment(l.seg + 1)
}

// syncTo returns once segment seg is durable up to end: a sealed segment
// was fsync'd by rotate; for the active one, the first writer to get
// syncMu fsyncs everything written so far, and the writers queued behind
// it find themselves covered.
//
// Commit delay: when other appends are under way, the writer about to
// fsync first waits commitDelay, so that the appends arriving meanwhile
// ride in its fsync instead of the next (as PostgreSQL's commit_delay
// does, with commit_siblings 1). A lone writer never waits.
// On a disk whose cache flushes queue behind each other, fewer and fuller
// fsyncs make puts faster (docs/performance.md, "Commit delay").
func (l *valueLog) syncTo(seg uint64, end int64) error {
	if !l.sync {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	failed := l.failed
	l.mu.Unlock()
	if failed != nil {
		// An fsync failed since these bytes were written (the failing one
		// records it before it lets go of syncMu): a later one that
		// succeeded, a rotation's say, proves nothing about them.
		return fmt.Errorf("store: value log failed earlier (reopen the store): %w", failed)
	}
	if l.syncedSeg > seg || (l.syncedSeg == seg && l.syncedEnd >= end) {
		return nil
	}
	if l.commitDelay > 0 && l.writers.Load() > 1 {
		time.Sleep(l.commitDelay)
		l.delayed++
	}
	l.mu.Lock()
	f, cur, curEnd := l.active, l.seg, l.end
	l.mu.Unlock()
	if cur != seg {
		return nil // rotated since: rotate fsync'd it
	}
	if err := l.syncFile(f, curEnd); err != nil {
		l.mu.Lock()
		if l.failed == nil {
			l.failed = err
		}
		l.mu.Unlock()
		return fmt.Errorf("store: value log sync: %w", err)
	}
	l.mu.Lock()
	failed = l.failed
	l.mu.Unlock()
	if failed != nil { // an earlier fsync failed: this one proves nothing
		return fmt.Errorf("store: value log failed earlier (reopen the store): %w", failed)
	}
	l.syncedSeg, l.syncedEnd = cur, curEnd
	l.syncs++
	return nil
}

// read returns the payload p points at, checked against its header; an
// error means the record or the pointer is damaged (or the segment gone).
func (l *valueLog) read(p logPtr) ([]byte, error) {
	f, err := l.file(p.seg)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, recordHeader+p.n)
	if _, err := f.ReadAt(buf, p.off-recordHeader); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("record past the end of segment %d", p.seg)
		}
		return nil, err
	}
	payload := buf[recordHeader:]
	if int(binary.LittleEndian.Uint32(buf)) != p.n {
		return nil, fmt.Errorf("record length %d, pointer says %d", binary.LittleEndian.Uint32(buf), p.n)
	}
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(buf[4:]) {
		return nil, errors.New("record checksum mismatch")
	}
	return payload, nil
}

// file returns segment seg open for reading.
func (l *valueLog) file(seg uint64) (*os.File, error) {
	l.filesMu.RLock()
	f := l.files[seg]
	l.filesMu.RUnlock()
	if f != nil {
		return f, nil
	}
	l.filesMu.Lock()
	defer l.filesMu.Unlock()
	if f := l.files[seg]; f != nil {
		return f, nil
	}
	f, err := os.Open(filepath.Join(l.dir, segmentName(seg)))
	if err != nil {
		return nil, err
	}
	l.files[seg] = f
	return f, nil
}

func (l *valueLog) close() error {
	l.mu.Lock()
	var errs []error
	if l.failed == nil {
		errs = append(errs, l.seal())
	}
	l.mu.Unlock()
	l.filesMu.Lock()
	defer l.filesMu.Unlock()
	for seg, f := range l.files {
		errs = append(errs, f.Close())
		delete(l.files, seg)
	}
	return errors.Join(errs...)
}

// replayableFlag marks, in a payload's first byte, a record that carries
// its put's stamp.
const replayableFlag = 0x80

// splitPayload splits a record payload into the OID text and the value.
func splitPayload(payload []byte) (oid string, value []byte, err error) {
	r, err := parsePayload(payload)
	return r.hex, r.value, err
}

// payloadFields are the parts of a record's payload.
type payloadFields struct {
	hex        string
	replayable bool
	stamp      objid.Stamp
	value      []byte
}

func parsePayload(payload []byte) (payloadFields, error) {
	var r payloadFields
	if len(payload) < 1 {
		return r, errors.New("record payload too short")
	}
	n := int(payload[0] &^ replayableFlag)
	r.replayable = payload[0]&replayableFlag != 0
	if len(payload) < 1+n+1 {
		return r, errors.New("record payload too short")
	}
	r.hex, r.value = string(payload[1:1+n]), payload[1+n:]
	if r.replayable {
		stamp, k := binary.Uvarint(r.value)
		if k <= 0 || k >= len(r.value) {
			return r, errors.New("record stamp malformed")
		}
		r.stamp, r.value = objid.Stamp(stamp), r.value[k:]
	}
	return r, nil
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

// activeSegment returns the segment appends go to, if one was started
// since Open.
func (l *valueLog) activeSegment() (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seg, l.active != nil
}

// remove deletes sealed segment seg (the collector has moved its live
// records and their index entries are durable).
func (l *valueLog) remove(seg uint64) error {
	l.filesMu.Lock()
	if f := l.files[seg]; f != nil {
		f.Close()
		delete(l.files, seg)
	}
	l.filesMu.Unlock()
	if err := os.Remove(filepath.Join(l.dir, segmentName(seg))); err != nil {
		return fmt.Errorf("store: value log: %w", err)
	}
	if l.sync {
		return syncDir(l.dir)
	}
	return nil
}
