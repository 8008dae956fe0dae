package uploadpack

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
)

// TestClone clones with stock git over both protocols a repository with
// two branches, annotated tags and a merge of nothing special: the clone's
// refs, log and objects match the source and git fsck --strict accepts it.
func TestClone(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 40, 10)
	generate(t, src, "dev", "refs/heads/main~5", 40, 5, 0)
	m := backend.NewMemory()
	load(t, m, "demo/a.git", src)
	srv := server(t, m)
	for _, proto := range []string{"2", "0"} {
		t.Run("v"+proto, func(t *testing.T) {
			dir := t.TempDir()
			mustGit(t, dir, "-c", "protocol.version="+proto, "clone", "-q", "--mirror", srv.URL+"/demo/a.git", "c")
			c := filepath.Join(dir, "c")
			refs := "--format=%(objectname) %(refname)"
			if got, want := mustGit(t, c, "for-each-ref", refs), string(src.Git(nil, "for-each-ref", refs)); got != want {
				t.Fatalf("refs: got\n%s\nwant\n%s", got, want)
			}
			if got, want := mustGit(t, c, "symbolic-ref", "HEAD"), "refs/heads/main\n"; got != want {
				t.Fatalf("HEAD: got %q; want %q", got, want)
			}
			if got, want := mustGit(t, c, "log", "--all", "--format=%H %T %P %s"), string(src.Git(nil, "log", "--all", "--format=%H %T %P %s")); got != want {
				t.Fatalf("log differs:\ngot  %.300s\nwant %.300s", got, want)
			}
			if got, want := countObjects(t, c), countObjects(t, src.Dir); got != want {
				t.Fatalf("objects: got %d; want %d", got, want)
			}
			mustGit(t, c, "fsck", "--strict", "--no-dangling")
		})
	}
}

// countObjects counts the objects reachable from every ref of the
// repository in dir.
func countObjects(t *testing.T, dir string) int {
	t.Helper()
	out := strings.TrimSpace(mustGit(t, dir, "rev-list", "--objects", "--all"))
	return len(strings.Split(out, "\n"))
}

// TestPartialClone: a blob:none clone gets commits and trees only; checking
// out fetches the blobs it needs by ID (wants of blobs reachable from a
// ref), and the work tree matches the source.
func TestPartialClone(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 20, 0)
	m := backend.NewMemory()
	load(t, m, "r", src)
	srv := server(t, m)
	omitted := strings.Count(string(src.Git(nil, "rev-list", "--objects", "--all", "--filter=blob:none", "--filter-print-omitted")), "\n~")
	for _, proto := range []string{"2", "0"} {
		t.Run("v"+proto, func(t *testing.T) {
			dir := t.TempDir()
			mustGit(t, dir, "-c", "protocol.version="+proto, "clone", "-q", "--filter=blob:none", "--no-checkout", srv.URL+"/r", "c")
			c := filepath.Join(dir, "c")
			missing := strings.Count(mustGit(t, c, "rev-list", "--objects", "--missing=print", "--all"), "\n?")
			if missing != omitted || missing == 0 {
				t.Fatalf("after a blob:none clone: %d objects missing; want the %d blobs", missing, omitted)
			}
			packs := srv.packCount()
			mustGit(t, c, "-c", "protocol.version="+proto, "checkout", "-q", "main")
			if srv.packCount() == packs {
				t.Fatalf("checkout fetched no pack; want the blobs of main fetched by ID")
			}
			if got, want := mustGit(t, c, "ls-files", "-s"), string(src.Git(nil, "ls-tree", "-r", "main")); len(strings.Split(got, "\n")) != len(strings.Split(want, "\n")) {
				t.Fatalf("checked out index:\n%s\nwant the entries of\n%s", got, want)
			}
			if out := mustGit(t, c, "status", "--porcelain"); out != "" {
				t.Fatalf("work tree after checkout: %q; want clean", out)
			}
			mustGit(t, c, "fsck", "--strict")
		})
	}
}

// readCounter is a Memory backend that counts the reads of each object.
type readCounter struct {
	*backend.Memory
	mu    sync.Mutex
	reads map[api.OID]int
}

func (r *readCounter) Get(ctx context.Context, oids []api.OID, fn func(api.OID, []byte, error)) error {
	r.mu.Lock()
	for _, oid := range oids {
		r.reads[oid]++
	}
	r.mu.Unlock()
	return r.Memory.Get(ctx, oids, fn)
}

// A clone reads each object once, except those refs name (each request of
// the clone reads them to peel or list refs): the commits and trees its
// walk read are kept for the pack (within keepBytes) instead of being read
// again.
func TestCloneReadsEachObjectOnce(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 30, 10)
	m := backend.NewMemory()
	load(t, m, "demo/a.git", src)
	rc := &readCounter{Memory: m, reads: map[api.OID]int{}}
	srv := server(t, rc)
	dir := t.TempDir()
	mustGit(t, dir, "clone", "-q", "--bare", srv.URL+"/demo/a.git", "c")
	mustGit(t, filepath.Join(dir, "c"), "fsck", "--strict", "--no-dangling")
	objs := countObjects(t, src.Dir)
	named := map[api.OID]bool{}
	for _, f := range strings.Fields(string(src.Git(nil, "for-each-ref", "--format=%(objectname) %(*objectname)"))) {
		named[api.MustParseOID(f)] = true
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.reads) < objs {
		t.Fatalf("%d objects read; the repository has %d", len(rc.reads), objs)
	}
	for oid, n := range rc.reads {
		if n > 1 && !named[oid] {
			t.Fatalf("object %s read %d times; want once", oid, n)
		}
	}
}
