package store

import (
	"encoding/binary"
	"sync/atomic"
	"testing"

	"github.com/stratum-store/stratum/api/objid"
)

// BenchmarkPut4KiB measures synced puts of distinct, compressible 4 KiB
// objects from 8*GOMAXPROCS goroutines, as a busy node has many requests in
// flight (leveldb merges their fsyncs). The figure includes hashing each
// object once for its OID.
func BenchmarkPut4KiB(b *testing.B) {
	s := mustOpen(b, DefaultConfig(b.TempDir()))
	base := textBytes(11, 4<<10)
	var next atomic.Uint64
	b.SetBytes(int64(len(base)))
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		data := append([]byte(nil), base...)
		for pb.Next() {
			binary.LittleEndian.PutUint64(data, next.Add(1))
			oid := mustOID(b, objid.SHA1, data)
			if created, err := s.Put(ctx, oid, data); err != nil || !created {
				b.Fatalf("Put: created=%t err=%v", created, err)
			}
		}
	})
}

// BenchmarkGet4KiB measures verified reads of compressible 4 KiB objects
// from one goroutine.
func BenchmarkGet4KiB(b *testing.B) {
	cfg := DefaultConfig(b.TempDir())
	cfg.NoSync = true // only the reads are measured
	s := mustOpen(b, cfg)
	oids := make([]objid.OID, 1024)
	for i := range oids {
		data := textBytes(uint64(i), 4<<10)
		oids[i] = mustOID(b, objid.SHA1, data)
		if _, err := s.Put(ctx, oids[i], data); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(4 << 10)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Get(ctx, oids[i%len(oids)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadJustWritten measures what a store that has seen many more
// objects than its entry cache holds pays to read objects it just wrote
// (a push, then its clones): 200,000 objects stored first, then per round
// 2,000 new ones written and each read back with Meta and Get. It reports
// the share of those reads whose value log pointer was no longer cached
// (miss-%), which then read leveldb.
func BenchmarkReadJustWritten(b *testing.B) {
	cfg := DefaultConfig(b.TempDir())
	cfg.NoSync = true // only the reads are measured
	cfg.EntryCache = 16384
	s := mustOpen(b, cfg)
	n := 0
	write := func(count int) []objid.OID {
		items := make([]BatchItem, count)
		for i := range items {
			data := randomBytes(uint64(n), 256)
			n++
			items[i] = BatchItem{OID: mustOID(b, objid.SHA256, data), Data: data}
		}
		for i := 0; i < len(items); i += 1000 {
			if _, err := s.PutBatch(ctx, items[i:min(i+1000, len(items))]); err != nil {
				b.Fatal(err)
			}
		}
		oids := make([]objid.OID, count)
		for i, it := range items {
			oids[i] = it.OID
		}
		return oids
	}
	write(200000)
	misses, reads := 0, 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		oids := write(2000)
		for _, oid := range oids {
			if _, ok, _ := s.entries.lookupPtr(oid); !ok {
				misses++
			}
		}
		reads += len(oids)
		b.StartTimer()
		for _, oid := range oids {
			if _, err := s.Meta(ctx, oid); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Get(ctx, oid); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(100*float64(misses)/float64(max(reads, 1)), "miss-%")
}
