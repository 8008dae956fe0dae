package tests

import (
	"encoding/binary"
	"sync/atomic"
	"testing"

	"github.com/stratum-store/stratum/api"
)

// benchCluster is a 3-node in-process cluster (real HTTP on loopback, real
// fsyncs) with the given client; logs are quiet.
func benchObject4K(i int64) []byte {
	data := make([]byte, 4096)
	binary.LittleEndian.PutUint64(data, uint64(i))
	return data
}

// BenchmarkPutHandler: quorum PUTs of 4 KiB objects through one node.
func BenchmarkPutHandler(b *testing.B) {
	c := MustStartCluster(b, 3, nil)
	cl := c.Client(0)
	var n atomic.Int64
	b.SetBytes(4096)
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cl.PutBytes(ctxT(b), benchObject4K(n.Add(1)), api.SHA256, api.Quorum); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetHandler: quorum GETs of stored 4 KiB objects through one node.
func BenchmarkGetHandler(b *testing.B) {
	c := MustStartCluster(b, 3, nil)
	cl := c.Client(0)
	var oids []api.OID
	for i := int64(0); i < 1000; i++ {
		rec, err := cl.PutBytes(ctxT(b), benchObject4K(i), api.SHA256, api.All)
		if err != nil {
			b.Fatal(err)
		}
		oids = append(oids, api.MustParseOID(rec.OID))
	}
	var n atomic.Int64
	b.SetBytes(4096)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cl.GetBytes(ctxT(b), oids[n.Add(1)%1000], api.Quorum); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
