package store

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api/objid"
)

// segments lists the value log's segment files.
func segments(t *testing.T, s *Store) []uint64 {
	t.Helper()
	segs, err := listSegments(s.paths.vlogDir())
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// Small objects live in the value log: they survive a reopen, segments
// rotate at SegmentSize, a reopen starts a new segment only when it
// writes, and objects written with NoValueLog (inline in leveldb) and
// without it read back under either setting.
func TestValueLogReopenRotationAndMixedCodecs(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.SegmentSize = 64 << 10
	s := mustOpen(t, cfg)
	var mu sync.Mutex
	objs := map[objid.OID][]byte{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				data := randomBytes(uint64(g*100+i), 1000+37*i)
				oid := mustOID(t, objid.SHA256, data)
				if created, err := s.Put(ctx, oid, data); err != nil || !created {
					t.Errorf("put: %t %v", created, err)
				}
				mu.Lock()
				objs[oid] = data
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	items := make([]BatchItem, 50)
	for i := range items {
		items[i].Data = textBytes(uint64(5000+i), 2000)
		items[i].OID = mustOID(t, objid.SHA1, items[i].Data)
		objs[items[i].OID] = items[i].Data
	}
	if res, err := s.PutBatch(ctx, items); err != nil || !res[0].Created {
		t.Fatalf("batch: %v %v", res, err)
	}
	segs := segments(t, s)
	if len(segs) < 4 {
		t.Fatalf("%d segments for about 400 KiB at 64 KiB each; want rotation", len(segs))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.NoValueLog = true
	cfg.ZstdValues = true // and the other codec: S2 values in the log, zstd inline
	s = mustOpen(t, cfg)
	if got := segments(t, s); len(got) != len(segs) {
		t.Fatalf("a reopen without writes made segments %v -> %v", segs, got)
	}
	inline := textBytes(9999, 3000)
	inlineOID := mustOID(t, objid.SHA256, inline)
	if _, err := s.Put(ctx, inlineOID, inline); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.rawValue(inlineOID); v[0] != codecZstd {
		t.Fatalf("with NoValueLog: index codec %d; want inline zstd", v[0])
	}
	objs[inlineOID] = inline
	for oid, data := range objs { // log entries read back with NoValueLog
		if got := mustGet(t, s, oid); !bytes.Equal(got, data) {
			t.Fatalf("%s differs after reopen with NoValueLog", oid)
		}
	}
	s.Close()
	cfg.NoValueLog = false
	s = mustOpen(t, cfg)
	more := randomBytes(77, 5000)
	moreOID := mustOID(t, objid.SHA256, more)
	if _, err := s.Put(ctx, moreOID, more); err != nil {
		t.Fatal(err)
	}
	objs[moreOID] = more
	if got := segments(t, s); got[len(got)-1] != segs[len(segs)-1]+1 {
		t.Fatalf("segments after a write following a reopen: %v; want one new after %v", got, segs)
	}
	for oid, data := range objs {
		if got := mustGet(t, s, oid); !bytes.Equal(got, data) {
			t.Fatalf("%s differs after the second reopen", oid)
		}
	}
	if got := s.Stats(); got.Objects != int64(len(objs)) {
		t.Fatalf("Stats %+v; want %d objects", got, len(objs))
	}
}

// A damaged value log record, or an index entry pointing at the wrong
// place, is ErrCorrupt (logged), never served; a put of the object then
// replaces the damaged copy.
func TestValueLogDamage(t *testing.T) {
	cfg, logged := testConfig(t)
	s := mustOpen(t, cfg)
	a, b := randomBytes(1, 4096), randomBytes(2, 4096)
	oa, ob := mustOID(t, objid.SHA256, a), mustOID(t, objid.SHA256, b)
	for oid, data := range map[objid.OID][]byte{oa: a, ob: b} {
		if _, err := s.Put(ctx, oid, data); err != nil {
			t.Fatal(err)
		}
	}
	va, _ := s.rawValue(oa)
	vb, _ := s.rawValue(ob)
	pa, err := parseLogEntry(va)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.paths.vlogDir(), segmentName(pa.seg))
	seg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A flipped bit in the record: the checksum catches it.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{seg[pa.off+100] ^ 1}, pa.off+100)
	assertCorrupt(t, s, oa, logged, "a flipped bit in the record")
	f.WriteAt(seg[pa.off+100:pa.off+101], pa.off+100)
	f.Close()
	if got := mustGet(t, s, oa); !bytes.Equal(got, a) {
		t.Fatal("restored record does not read back")
	}
	for _, c := range []struct {
		what  string
		value []byte
	}{
		{"a pointer to another object's record", vb},
		{"a pointer past the segment's end", logPtr{seg: pa.seg, off: pa.off + 1<<20, n: pa.n}.entry()},
		{"a pointer into the middle of a record", logPtr{seg: pa.seg, off: pa.off + 8, n: pa.n}.entry()},
		{"a pointer with the wrong length", logPtr{seg: pa.seg, off: pa.off, n: pa.n - 1}.entry()},
		{"a pointer to a missing segment", logPtr{seg: pa.seg + 40, off: pa.off, n: pa.n}.entry()},
		{"a truncated pointer", va[:len(va)-1]},
		{"a pointer with trailing bytes", append(bytes.Clone(va), 0)},
	} {
		if err := s.setRawValue(oa, c.value); err != nil {
			t.Fatal(err)
		}
		assertCorrupt(t, s, oa, logged, c.what)
	}
	// A put over the damaged copy replaces it.
	if created, err := s.Put(ctx, oa, a); err != nil || !created {
		t.Fatalf("put over a damaged copy: created=%t %v", created, err)
	}
	if got := mustGet(t, s, oa); !bytes.Equal(got, a) {
		t.Fatal("replaced copy does not read back")
	}
}

// The collector rewrites segments that are mostly garbage (after deletes
// and removals) and deletes them; readers running meanwhile always get
// their objects; the live accounting agrees after a reopen; a second run
// finds nothing to do.
func TestValueLogCollect(t *testing.T) {
	cfg, logged := testConfig(t)
	cfg.SegmentSize = 64 << 10
	s := mustOpen(t, cfg)
	var oids []objid.OID
	objs := map[objid.OID][]byte{}
	for i := range 300 {
		data := randomBytes(uint64(i), 2000+i)
		oid := mustOID(t, objid.SHA256, data)
		if _, err := s.Put(ctx, oid, data); err != nil {
			t.Fatal(err)
		}
		oids = append(oids, oid)
		objs[oid] = data
	}
	before, _ := s.ValueLogStats()
	for i, oid := range oids {
		switch i % 3 {
		case 0:
			if _, err := s.Delete(ctx, oid, objid.Stamp(1<<40), 1); err != nil {
				t.Fatal(err)
			}
			delete(objs, oid)
		case 1:
			if err := s.Remove(ctx, oid); err != nil {
				t.Fatal(err)
			}
			delete(objs, oid)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				oid := oids[(3*i+2)%len(oids)] // the kept third
				if got, err := s.Get(ctx, oid); err != nil || !bytes.Equal(got.Data, objs[oid]) {
					t.Errorf("read of %s during collection: %v", oid, err)
					return
				}
			}
		}()
	}
	freed, err := s.CollectValueLog(ctx)
	close(stop)
	wg.Wait()
	if err != nil || freed == 0 {
		t.Fatalf("CollectValueLog: freed %d, %v", freed, err)
	}
	after, _ := s.ValueLogStats()
	t.Logf("value log before %+v, after %+v, freed %d", before, after, freed)
	if after.Bytes >= before.Bytes || after.Bytes-after.LiveBytes > cfg.SegmentSize {
		t.Fatalf("after collection %+v (before %+v): want far less garbage", after, before)
	}
	if logged.Load() != 0 {
		t.Fatalf("%d errors logged during collection", logged.Load())
	}
	if again, err := s.CollectValueLog(ctx); err != nil || again != 0 {
		t.Fatalf("second collection: freed %d, %v; want nothing to do", again, err)
	}
	s.Close()
	s = mustOpen(t, cfg)
	if st, _ := s.ValueLogStats(); st.LiveBytes != after.LiveBytes {
		t.Fatalf("live bytes after reopen %d; want %d", st.LiveBytes, after.LiveBytes)
	}
	for i, oid := range oids {
		got, err := s.Get(ctx, oid)
		if data, kept := objs[oid]; kept {
			if err != nil || !bytes.Equal(got.Data, data) {
				t.Fatalf("kept object %d after collection and reopen: %v", i, err)
			}
		} else if err == nil {
			t.Fatalf("removed object %d reads back after collection", i)
		}
	}
}

// fillFirstSegment puts n random objects of size bytes (seeds from seed
// on) and returns the value log's first segment, the objects whose
// records are in it (in log order), and every object put.
func fillFirstSegment(t *testing.T, s *Store, n, size int, seed uint64) (first uint64, in []objid.OID, objs map[objid.OID][]byte) {
	t.Helper()
	objs = map[objid.OID][]byte{}
	var oids []objid.OID
	for i := range n {
		data := randomBytes(seed+uint64(i), size)
		oid := mustOID(t, objid.SHA256, data)
		if _, err := s.Put(ctx, oid, data); err != nil {
			t.Fatal(err)
		}
		oids = append(oids, oid)
		objs[oid] = data
	}
	first = segments(t, s)[0]
	for _, oid := range oids {
		if p, ok := s.indexedPtr(oid); ok && p.seg == first {
			in = append(in, oid)
		}
	}
	return first, in, objs
}

// A segment whose tail was torn by a crash mid-append is collected: the
// scan stops at the tear and the live records before it are moved.
func TestValueLogCollectTornTail(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.SegmentSize = 16 << 10
	s := mustOpen(t, cfg)
	first, inFirst, _ := fillFirstSegment(t, s, 12, 3000, 900)
	path := filepath.Join(s.paths.vlogDir(), segmentName(first))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 5}) // a header promising 200 bytes, then a crash
	f.Close()
	if len(inFirst) < 2 {
		t.Fatalf("%d objects in the first segment; want several", len(inFirst))
	}
	for _, oid := range inFirst[1:] { // all but one: mostly garbage, one record live
		if err := s.Remove(ctx, oid); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CollectValueLog(ctx); err != nil {
		t.Fatal(err)
	}
	if segs := segments(t, s); segs[0] == first {
		t.Fatalf("segment %d with one live record before its torn tail was not collected", first)
	}
	if got, err := s.Get(ctx, inFirst[0]); err != nil || got.Size != 3000 {
		t.Fatalf("the moved record: %v", err)
	}
}

// The collector goes on past a record damaged in a sealed segment (bit
// rot): while the index still points at the damaged copy the segment is
// kept, and the live records after it are moved all the same; once the
// copy is replaced by a new put, the segment is collected. Before, the
// scan stopped at the damage, so the records after it were never moved
// and the segment was kept for good.
func TestValueLogCollectPastADamagedRecord(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.SegmentSize = 16 << 10
	s := mustOpen(t, cfg)
	first, in, objs := fillFirstSegment(t, s, 40, 1000, 1700)
	if len(in) < 4 {
		t.Fatalf("%d objects in the first segment; want at least 4", len(in))
	}
	damaged, last := in[1], in[len(in)-1]
	p, _ := s.indexedPtr(damaged)
	path := filepath.Join(s.paths.vlogDir(), segmentName(first))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, p.off+500)
	f.WriteAt([]byte{b[0] ^ 0x40}, p.off+500) // inside the payload: the length still reads
	f.Close()
	for _, oid := range in[2 : len(in)-1] { // garbage between the damage and the last record
		if err := s.Remove(ctx, oid); err != nil {
			t.Fatal(err)
		}
		delete(objs, oid)
	}

	// The damaged copy is still indexed: the segment stays, but the last
	// record, after the damage, is moved out of it.
	if _, err := s.CollectValueLog(ctx); err != nil {
		t.Fatal(err)
	}
	if segs := segments(t, s); segs[0] != first {
		t.Fatalf("segment %d was collected while the index still points at its damaged record", first)
	}
	if q, _ := s.indexedPtr(last); q.seg == first {
		t.Fatalf("the record after the damaged one was not moved")
	}
	if q, _ := s.indexedPtr(damaged); q != p {
		t.Fatalf("the damaged copy's entry moved to %+v; want it left at %+v", q, p)
	}

	// A put replaces the damaged copy; now the segment goes.
	if created, err := s.Put(ctx, damaged, objs[damaged]); err != nil || !created {
		t.Fatalf("put over the damaged copy: created=%t %v", created, err)
	}
	if _, err := s.CollectValueLog(ctx); err != nil {
		t.Fatal(err)
	}
	if segs := segments(t, s); segs[0] == first {
		t.Fatalf("segment %d not collected after its damaged copy was replaced", first)
	}
	for oid, data := range objs {
		if got := mustGet(t, s, oid); !bytes.Equal(got, data) {
			t.Fatalf("%s after collection: wrong bytes", oid)
		}
	}
}

// A put is acknowledged only once its value log record is fsync'd: when
// the fsync fails the put fails and nothing is indexed, and every later
// put fails too until the store is reopened (a later fsync that succeeds
// would not prove the failed one's pages reached the disk).
func TestValueLogSyncFailureAcknowledgesNothing(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	a, b := randomBytes(11, 4096), randomBytes(12, 4096)
	oa, ob := mustOID(t, objid.SHA256, a), mustOID(t, objid.SHA256, b)
	s.vlog.syncFile = func(*os.File, int64) error { return errors.New("injected EIO") }
	if _, err := s.Put(ctx, oa, a); err == nil {
		t.Fatal("put acknowledged though its fsync failed")
	}
	if _, err := s.Get(ctx, oa); !errors.Is(err, ErrNotFound) {
		t.Fatalf("object of a failed put: %v; want not found", err)
	}
	if res, err := s.PutBatch(ctx, []BatchItem{{OID: ob, Data: b}}); err == nil && res[0].Err == nil {
		t.Fatal("batch acknowledged after a failed fsync")
	}
	s.vlog.syncFile = datasync
	if _, err := s.Put(ctx, ob, b); err == nil {
		t.Fatal("put acknowledged after an earlier fsync failed, without a reopen")
	}
	if got := s.Stats().Objects; got != 0 {
		t.Fatalf("%d objects indexed after failed fsyncs", got)
	}
	s.Close()
	s = mustOpen(t, cfg)
	for oid, data := range map[objid.OID][]byte{oa: a, ob: b} {
		if created, err := s.Put(ctx, oid, data); err != nil || !created {
			t.Fatalf("put after reopen: %t %v", created, err)
		}
	}
}

// scanSegment reads segment seg's records from the start as the replay
// and the collector do; it returns how many it read, where the scan
// stopped and the error that stopped it (io.EOF: the records' end).
func scanSegment(t *testing.T, s *Store, seg uint64) (records int, end int64, err error) {
	t.Helper()
	f, err := os.Open(filepath.Join(s.paths.vlogDir(), segmentName(seg)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		_, n, err := readRecord(r, seg, end)
		if err != nil {
			return records, end, err
		}
		records++
		end += n
	}
}

// A synced log writes zeros ahead of the active segment's end, so a
// record's fsync lands on blocks the file already has (vlog.go, "Zeros
// ahead of the end"): the zeros read as the records' end, not as damage;
// a sealed segment (rotated, or closed) holds its records and no zeros;
// and a segment a crash left with its zeros reads back whole on Open.
func TestValueLogZerosAhead(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.SegmentSize = 64 << 10
	s := mustOpen(t, cfg)
	var oids []objid.OID
	for i := range 60 {
		data := randomBytes(uint64(1300+i), 3000)
		oid := mustOID(t, objid.SHA256, data)
		if _, err := s.Put(ctx, oid, data); err != nil {
			t.Fatal(err)
		}
		oids = append(oids, oid)
	}
	segs := segments(t, s)
	if len(segs) < 3 {
		t.Fatalf("%d segments; want the puts to rotate a few", len(segs))
	}
	size := func(seg uint64) int64 {
		fi, err := os.Stat(filepath.Join(s.paths.vlogDir(), segmentName(seg)))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	for _, seg := range segs[:len(segs)-1] {
		n, end, err := scanSegment(t, s, seg)
		if !errors.Is(err, io.EOF) || n == 0 || end != size(seg) {
			t.Fatalf("sealed segment %d: %d records end at %d (%v); its file is %d bytes", seg, n, end, err, size(seg))
		}
	}
	active := segs[len(segs)-1]
	n, end, err := scanSegment(t, s, active)
	if !errors.Is(err, io.EOF) || n == 0 {
		t.Fatalf("active segment: %d records, stopped at %d by %v; want its records, then the end", n, end, err)
	}
	if end != s.vlog.tail().off || size(active) <= end {
		t.Fatalf("active segment: records end at %d, the log at %d, the file at %d; want zeros after the records", end, s.vlog.tail().off, size(active))
	}

	// A crash now (a copy of the store's files as they are) leaves the
	// zeros; the copy opens with every object.
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(cfg.Dir)); err != nil {
		t.Fatal(err)
	}
	ccfg := cfg
	ccfg.Dir = crashed
	c := mustOpen(t, ccfg)
	for _, oid := range oids {
		mustGet(t, c, oid)
	}
	if n2, end2, err := scanSegment(t, c, active); !errors.Is(err, io.EOF) || n2 != n || end2 != end {
		t.Fatalf("crashed copy's last segment: %d records to %d (%v); want %d to %d", n2, end2, err, n, end)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := size(active); got != end {
		t.Fatalf("closed segment is %d bytes; want its records' %d", got, end)
	}
	s = mustOpen(t, cfg)
	for _, oid := range oids {
		mustGet(t, s, oid)
	}
}

// The commit delay waits only when others are writing: puts one after
// another never wait before their fsync; concurrent puts do, and share
// fsyncs (vlog.go, syncTo).
func TestCommitDelayOnlyUnderConcurrency(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.CommitDelay = time.Millisecond
	s := mustOpen(t, cfg)
	put := func(seed uint64) {
		data := randomBytes(seed, 2000)
		if _, err := s.Put(ctx, mustOID(t, objid.SHA256, data), data); err != nil {
			t.Error(err)
		}
	}
	counts := func() (syncs, delayed uint64) {
		s.vlog.syncMu.Lock()
		defer s.vlog.syncMu.Unlock()
		return s.vlog.syncs, s.vlog.delayed
	}
	for i := range 50 {
		put(uint64(2000 + i))
	}
	if syncs, delayed := counts(); delayed != 0 || syncs != 50 {
		t.Fatalf("50 puts one after another: %d fsyncs, %d delayed; want 50 and none", syncs, delayed)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				put(uint64(3000 + g*100 + i))
			}
		})
	}
	wg.Wait()
	syncs, delayed := counts()
	syncs -= 50
	if delayed == 0 || syncs >= 320 {
		t.Fatalf("320 puts from 16 goroutines: %d fsyncs, %d delayed; want shared fsyncs, some after a wait", syncs, delayed)
	}
	t.Logf("320 concurrent puts: %d fsyncs, %d after a wait", syncs, delayed)
}
