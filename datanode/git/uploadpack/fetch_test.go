package uploadpack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
)

// TestIncrementalFetch clones, adds commits to the source and fetches: the
// pack holds exactly the new objects (git rev-list --objects new --not
// old), and the clone matches the source.
func TestIncrementalFetch(t *testing.T) {
	for _, proto := range []string{"2", "0"} {
		t.Run("v"+proto, func(t *testing.T) {
			src := gittest.New(t, true)
			generate(t, src, "main", "", 0, 30, 0)
			m := backend.NewMemory()
			load(t, m, "r", src)
			srv := server(t, m)
			dir := t.TempDir()
			mustGit(t, dir, "-c", "protocol.version="+proto, "clone", "-q", "--no-checkout", srv.URL+"/r", "c")
			c := filepath.Join(dir, "c")
			old := src.Line(nil, "rev-parse", "main")
			generate(t, src, "main", "refs/heads/main", 30, 3, 0)
			load(t, m, "r", src)
			mustGit(t, c, "-c", "protocol.version="+proto, "fetch", "-q", "origin")
			want := len(sortedLines(string(src.Git(nil, "rev-list", "--objects", "main", "--not", old))))
			if got := srv.lastPack(); got != want {
				t.Fatalf("incremental pack: got %d objects; want %d (the new ones only)", got, want)
			}
			if got, want := mustGit(t, c, "rev-parse", "origin/main"), src.Line(nil, "rev-parse", "main")+"\n"; got != want {
				t.Fatalf("origin/main: got %q; want %q", got, want)
			}
			mustGit(t, c, "fsck", "--strict", "--no-dangling")
		})
	}
}

// TestFetchNegotiates fetches into a clone that has 300 commits of its own
// on another branch: the client sends many haves the server does not know
// before it finds the common ones, over several rounds. The pack still
// holds only the objects the client lacks.
func TestFetchNegotiates(t *testing.T) {
	for _, proto := range []string{"2", "0"} {
		t.Run("v"+proto, func(t *testing.T) {
			src := gittest.New(t, true)
			generate(t, src, "main", "", 0, 20, 0)
			m := backend.NewMemory()
			load(t, m, "r", src)
			srv := server(t, m)
			dir := t.TempDir()
			mustGit(t, dir, "-c", "protocol.version="+proto, "clone", "-q", "--bare", srv.URL+"/r", "c")
			local := gittest.New(t, true)
			local.Dir = filepath.Join(dir, "c") // generate in the clone
			generate(t, local, "local", "refs/heads/main", 100, 300, 0)
			old := src.Line(nil, "rev-parse", "main")
			generate(t, src, "main", "refs/heads/main", 20, 2, 0)
			load(t, m, "r", src)
			o, e, err := gitIn(t, local.Dir, []string{"GIT_TRACE_PACKET=1"}, "-c", "protocol.version="+proto, "fetch", srv.URL+"/r", "main:main")
			if err != nil {
				t.Fatalf("fetch: %v\n%s%.2000s", err, o, e)
			}
			want := len(sortedLines(string(src.Git(nil, "rev-list", "--objects", "main", "--not", old))))
			if got := srv.lastPack(); got != want {
				t.Fatalf("pack after negotiation: got %d objects; want %d", got, want)
			}
			haves := strings.Count(e, "> have ")
			if haves < 32 {
				t.Fatalf("the client sent %d haves; want a negotiation of several rounds", haves)
			}
			t.Logf("%d haves sent", haves)
		})
	}
}

// TestFetchTags: git's tag auto-following brings the annotated tags of
// fetched commits, not a tag of a blob the clone does not have; --tags
// brings that one too (a want of a tag whose target is a blob).
func TestFetchTags(t *testing.T) {
	for _, proto := range []string{"2", "0"} {
		t.Run("v"+proto, func(t *testing.T) {
			src := gittest.New(t, true)
			generate(t, src, "main", "", 0, 10, 5)
			m := backend.NewMemory()
			load(t, m, "r", src)
			srv := server(t, m)
			dir := t.TempDir()
			mustGit(t, dir, "-c", "protocol.version="+proto, "clone", "-q", "--no-checkout", srv.URL+"/r", "c")
			c := filepath.Join(dir, "c")
			generate(t, src, "main", "refs/heads/main", 10, 5, 5) // tag v15 on the new tip
			generate(t, src, "side", "refs/heads/main~8", 100, 2, 1)
			blob := src.Line([]byte("a blob no commit has\n"), "hash-object", "-w", "--stdin")
			src.Git(nil, "tag", "-a", "-m", "orphan", "orphan", blob)
			load(t, m, "r", src)
			mustGit(t, c, "-c", "protocol.version="+proto, "fetch", "-q", "origin")
			if got, want := mustGit(t, c, "tag", "-l"), "v10\nv101\nv102\nv15\nv5\n"; got != want {
				t.Fatalf("tags after a fetch that follows tags: got %q; want %q", got, want)
			}
			mustGit(t, c, "-c", "protocol.version="+proto, "fetch", "-q", "--tags", "origin")
			if got, want := mustGit(t, c, "for-each-ref", "refs/tags"), string(src.Git(nil, "for-each-ref", "refs/tags")); got != want {
				t.Fatalf("tags after --tags: got\n%s\nwant\n%s", got, want)
			}
			mustGit(t, c, "fsck", "--strict", "--no-dangling")
		})
	}
}

// TestShallow compares shallow clones and fetches from stratum with the
// same from stock git (file:// runs git's own upload-pack): the same
// commits, the same shallow boundary.
func TestShallow(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 30, 10)
	generate(t, src, "dev", "refs/heads/main~10", 100, 5, 0)
	src.Git(nil, "branch", "old", "main~20")
	m := backend.NewMemory()
	load(t, m, "r", src)
	srv := server(t, m)
	since := fmt.Sprint(1700000000 + 1000*24) // main's commits 24..29, dev's all
	cases := []struct {
		name    string
		clone   []string
		fetches [][]string
	}{
		{"depth1", []string{"--depth", "1"}, [][]string{{"--deepen", "3"}, {"--unshallow"}}},
		{"depth3-all", []string{"--depth", "3", "--no-single-branch"}, [][]string{{"--depth", "5"}}},
		{"since", []string{"--shallow-since", since, "--no-single-branch"}, [][]string{{"--deepen", "1"}}},
		{"exclude", []string{"--shallow-exclude", "old", "--no-single-branch"}, [][]string{{"--shallow-exclude", "v10"}}},
	}
	for _, tc := range cases {
		for _, proto := range []string{"2", "0"} {
			t.Run(tc.name+"/v"+proto, func(t *testing.T) {
				dir := t.TempDir()
				clone := func(url, to string) string {
					args := append([]string{"-c", "protocol.version=" + proto, "clone", "-q", "--no-checkout"}, tc.clone...)
					mustGit(t, dir, append(args, url, to)...)
					return filepath.Join(dir, to)
				}
				ours, theirs := clone(srv.URL+"/r", "ours"), clone("file://"+src.Dir, "theirs")
				sameShallow(t, ours, theirs, "clone")
				for _, f := range tc.fetches {
					for _, d := range []string{ours, theirs} {
						mustGit(t, d, append([]string{"-c", "protocol.version=" + proto, "fetch", "-q"}, f...)...)
					}
					sameShallow(t, ours, theirs, strings.Join(f, " "))
				}
				mustGit(t, ours, "fsck", "--strict", "--no-dangling")
			})
		}
	}
}

// sameShallow compares two clones' commits and shallow files.
func sameShallow(t *testing.T, ours, theirs, step string) {
	t.Helper()
	read := func(d string) (string, string) {
		shallow, _ := os.ReadFile(filepath.Join(d, ".git", "shallow"))
		return strings.Join(sortedLines(mustGit(t, d, "rev-list", "--all")), "\n"),
			strings.Join(sortedLines(string(shallow)), " ")
	}
	oc, osh := read(ours)
	tc, tsh := read(theirs)
	if oc != tc {
		t.Fatalf("%s: commits differ from stock git's: ours %d, theirs %d", step, strings.Count(oc, "\n")+1, strings.Count(tc, "\n")+1)
	}
	if osh != tsh {
		t.Fatalf("%s: shallow boundary differs from stock git's:\nours   %s\ntheirs %s", step, osh, tsh)
	}
}

// TestShallowThenFetch: a shallow clone (as CI makes) fetches new commits
// without deepening: the same commits and boundary as with stock git, and
// only the new objects.
func TestShallowThenFetch(t *testing.T) {
	for _, proto := range []string{"2", "0"} {
		t.Run("v"+proto, func(t *testing.T) {
			src := gittest.New(t, true)
			generate(t, src, "main", "", 0, 10, 0)
			m := backend.NewMemory()
			load(t, m, "r", src)
			srv := server(t, m)
			dir := t.TempDir()
			for url, to := range map[string]string{srv.URL + "/r": "ours", "file://" + src.Dir: "theirs"} {
				mustGit(t, dir, "-c", "protocol.version="+proto, "clone", "-q", "--no-checkout", "--depth", "1", url, to)
			}
			old := src.Line(nil, "rev-parse", "main")
			generate(t, src, "main", "refs/heads/main", 10, 3, 0)
			load(t, m, "r", src)
			for _, to := range []string{"ours", "theirs"} {
				mustGit(t, filepath.Join(dir, to), "-c", "protocol.version="+proto, "fetch", "-q")
			}
			sameShallow(t, filepath.Join(dir, "ours"), filepath.Join(dir, "theirs"), "fetch")
			want := len(sortedLines(string(src.Git(nil, "rev-list", "--objects", "main", "--not", old))))
			if got := srv.lastPack(); got != want {
				t.Fatalf("pack: got %d objects; want the %d new ones", got, want)
			}
			mustGit(t, filepath.Join(dir, "ours"), "fsck", "--strict", "--no-dangling")
		})
	}
}
