package uploadpack

import (
	"path/filepath"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
	"github.com/stratum-store/stratum/datanode/git/packcache"
)

// TestCloneFromThePackCache: the second full clone of the same tips is
// the cached pack (a hit, no walk) and clones the same repository, over
// either protocol; a fetch
// with haves in common is not cached; a new tip is a new key.
func TestCloneFromThePackCache(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 30, 10)
	m := backend.NewMemory()
	load(t, m, "demo/a.git", src)
	cache, err := packcache.Open(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	srv := cachedServer(t, m, cache)
	refs := "--format=%(objectname) %(refname)"
	clone := func(proto string) string {
		t.Helper()
		dir := t.TempDir()
		mustGit(t, dir, "-c", "protocol.version="+proto, "clone", "-q", "--mirror", srv.URL+"/demo/a.git", "c")
		c := filepath.Join(dir, "c")
		if got, want := mustGit(t, c, "for-each-ref", refs), string(src.Git(nil, "for-each-ref", refs)); got != want {
			t.Fatalf("refs: got\n%s\nwant\n%s", got, want)
		}
		mustGit(t, c, "fsck", "--strict", "--no-dangling")
		return c
	}
	stats := func(wantHits, wantMisses int64) {
		t.Helper()
		if hits, misses, _ := cache.Stats(); hits != wantHits || misses != wantMisses {
			t.Fatalf("pack cache: %d hits, %d misses; want %d, %d", hits, misses, wantHits, wantMisses)
		}
	}
	clone("2")
	stats(0, 1)
	c := clone("2")
	stats(1, 1)
	clone("0") // v0 asks for the same pack (ofs-delta, include-tag): the same key
	stats(2, 1)

	generate(t, src, "main", "refs/heads/main", 30, 3, 0)
	load(t, m, "demo/a.git", src)
	mustGit(t, c, "-c", "protocol.version=2", "fetch", "-q", srv.URL+"/demo/a.git", "+refs/heads/*:refs/heads/*")
	stats(2, 1) // haves in common: not cached
	clone("2")  // new tips: a new key
	stats(2, 2)
	clone("0")
	stats(3, 2)
}
