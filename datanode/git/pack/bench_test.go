package pack

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/object"
)

// benchPack writes n blobs of about 2 KiB, every other one an OFS delta on
// the one before, plus a tree per 100 blobs.
func benchPack(b *testing.B, n int) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, uint32(n))
	if err != nil {
		b.Fatal(err)
	}
	var prev []byte
	var prevOff int64
	for i := 0; i < n; i++ {
		body := fmt.Appendf(bytes.Repeat([]byte("some file content line\n"), 90), "unique %d\n", i)
		if i%2 == 1 {
			w.AddOfsDelta(prevOff, prev, body)
			continue
		}
		prev = body
		prevOff, _ = w.Add(object.Blob, body)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkRead(b *testing.B) {
	const n = 20000
	p := benchPack(b, n)
	dir := b.TempDir()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Read(context.Background(), bytes.NewReader(p), Config{TempDir: dir}, func(Object) error { return nil })
		if err != nil || res.Objects != n {
			b.Fatalf("got %d objects, %v; want %d", res.Objects, err, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "objects/s")
}
