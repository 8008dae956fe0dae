package uploadpack

import (
	"context"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
)

// BenchmarkClone clones a generated repository of about 6,000 objects
// (1,000 commits) from Memory: "serve" is Serve alone answering a v2 fetch
// into io.Discard (the server's work), "git" a stock git clone over
// loopback HTTP (the client's index-pack included), "stock-git" the same
// clone served by git http-backend (CGI) from the source repository, for
// comparison. Each reports objects/s.
func BenchmarkClone(b *testing.B) {
	src := gittest.New(b, true)
	commits := 1000
	if s := os.Getenv("UPLOADPACK_BENCH_COMMITS"); s != "" { // a larger repository, by hand
		commits, _ = strconv.Atoi(s)
	}
	generate(b, src, "main", "", 0, commits, 100)
	m := backend.NewMemory()
	load(b, m, "r", src)
	objects := len(sortedLines(string(src.Git(nil, "rev-list", "--objects", "--all"))))
	tip := src.Line(nil, "rev-parse", "main")
	b.Run("serve", func(b *testing.B) {
		req := pkts("command=fetch", "\x01", "want "+tip, "include-tag", "ofs-delta", "done", "")
		var w countingWriter
		cb := &countingBackend{Backend: m}
		peak := heapPeak()
		for b.Loop() {
			w = 0
			if err := Serve(context.Background(), strings.NewReader(req), &w, cb, "r", true); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(cb.calls)/float64(b.N), "gets/op")
		b.ReportMetric(float64(cb.oids)/float64(b.N), "oids-read/op")
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
	b.Run("stock-git", func(b *testing.B) { // the same clone served by git http-backend
		h := &cgi.Handler{Path: "/usr/lib/git-core/git-http-backend", Env: []string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(src.Dir), "GIT_HTTP_EXPORT_ALL=1"}}
		srv := httptest.NewServer(h)
		defer srv.Close()
		for b.Loop() {
			mustGit(b, b.TempDir(), "clone", "-q", "--bare", srv.URL+"/"+filepath.Base(src.Dir), "c")
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

// heapPeak samples the heap every millisecond until the returned function
// is called, which returns the largest heap seen above the heap at the
// start (after a GC). Garbage not collected yet counts: an upper bound.
func heapPeak() func() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base, peak := sample[0].Value.Uint64(), uint64(0)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				metrics.Read(sample)
				if v := sample[0].Value.Uint64(); v > base {
					peak = max(peak, v-base)
				}
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return peak
	}
}

// countingBackend counts Get calls and the IDs they ask for.
type countingBackend struct {
	backend.Backend
	calls, oids int
}

func (c *countingBackend) Get(ctx context.Context, oids []api.OID, fn func(api.OID, []byte, error)) error {
	c.calls++
	c.oids += len(oids)
	return c.Backend.Get(ctx, oids, fn)
}
