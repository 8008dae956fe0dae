package uploadpack

import (
	"path/filepath"
	"strings"
	"testing"

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
