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
