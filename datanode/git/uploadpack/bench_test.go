package uploadpack

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
)

// BenchmarkClone clones a generated repository of about 6,000 objects
// (1,000 commits) from Memory: "serve" is Serve alone answering a v2 fetch
// into io.Discard (the server's work), "git" a stock git clone over
// loopback HTTP (the client's index-pack included). Both report objects/s.
func BenchmarkClone(b *testing.B) {
	src := gittest.New(b, true)
	generate(b, src, "main", "", 0, 1000, 100)
	m := backend.NewMemory()
	load(b, m, "r", src)
	objects := len(sortedLines(string(src.Git(nil, "rev-list", "--objects", "--all"))))
	tip := src.Line(nil, "rev-parse", "main")
	b.Run("serve", func(b *testing.B) {
		req := pkts("command=fetch", "\x01", "want "+tip, "include-tag", "ofs-delta", "done", "")
		for b.Loop() {
			if err := Serve(context.Background(), strings.NewReader(req), io.Discard, m, "r", true); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(objects*b.N)/b.Elapsed().Seconds(), "objects/s")
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
	b.Logf("%d objects", objects)
}
