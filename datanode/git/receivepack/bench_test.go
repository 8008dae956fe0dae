package receivepack

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
)

// BenchmarkPush receives a pack of a generated repository (600 commits,
// about 4,800 objects, most blobs deltas, as git pack-objects makes it)
// into an empty Memory: parse, check, connectivity, Put, one transaction.
func BenchmarkPush(b *testing.B) {
	r := gittest.New(b, false)
	history(b, r, "", 600, 8)
	p := r.Git(nil, "pack-objects", "--revs", "--all", "--stdout", "-q")
	body := request0(create(r.Line(nil, "rev-parse", "main"), "report-status quiet"), p)
	dir := b.TempDir()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	objects := 0
	for i := 0; i < b.N; i++ {
		res, err := Serve(context.Background(), bytes.NewReader(body), io.Discard, backend.NewMemory(), testRepo, Limits{TempDir: dir})
		if err != nil || res.Unpack != nil || res.Commands[0].Status != statusOK {
			b.Fatalf("push: %v, unpack %v, %+v", err, res.Unpack, res.Commands)
		}
		objects += res.Stored
	}
	b.ReportMetric(float64(objects)/b.Elapsed().Seconds(), "objects/s")
	b.ReportMetric(float64(objects/b.N), "objects/push")
}
