package uploadpack

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
)

// BenchmarkClone clones a generated repository of about 6,000 objects
// (1,000 commits) from Memory: "serve" is Serve alone answering a v2 fetch
// into io.Discard (the server's work), "git" a stock git clone over
// loopback HTTP (the client's index-pack included), "stock-git" the same
// clone served by git's own upload-pack (file://), for comparison. Each
// reports objects/s.
func BenchmarkClone(b *testing.B) {
	src := gittest.New(b, true)
	generate(b, src, "main", "", 0, 1000, 100)
	m := backend.NewMemory()
	load(b, m, "r", src)
	objects := len(sortedLines(string(src.Git(nil, "rev-list", "--objects", "--all"))))
	tip := src.Line(nil, "rev-parse", "main")
	b.Run("serve", func(b *testing.B) {
		req := pkts("command=fetch", "\x01", "want "+tip, "include-tag", "ofs-delta", "done", "")
		var w countingWriter
		for b.Loop() {
			w = 0
			if err := Serve(context.Background(), strings.NewReader(req), &w, m, "r", true); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(objects*b.N)/b.Elapsed().Seconds(), "objects/s")
		b.ReportMetric(float64(w), "response-bytes")
		b.ReportMetric(float64(len(src.Git(nil, "pack-objects", "--all", "--stdout"))), "git-pack-bytes")
	})
	b.Run("git", func(b *testing.B) {
		srv := server(b, m)
		for b.Loop() {
			dir := b.TempDir()
			mustGit(b, dir, "clone", "-q", "--bare", srv.URL+"/r", "c")
			b.StopTimer()
			if n := len(sortedLines(mustGit(b, filepath.Join(dir, "c"), "rev-list", "--objects", "--all"))); n != objects {
				b.Fatalf("clone has %d objects; want %d", n, objects)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(objects*b.N)/b.Elapsed().Seconds(), "objects/s")
	})
	b.Run("stock-git", func(b *testing.B) { // the same clone served by git's own upload-pack
		for b.Loop() {
			mustGit(b, b.TempDir(), "clone", "-q", "--bare", "file://"+src.Dir, "c")
		}
		b.ReportMetric(float64(objects*b.N)/b.Elapsed().Seconds(), "objects/s")
	})
	b.Logf("%d objects", objects)
}

// countingWriter counts and discards.
type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
