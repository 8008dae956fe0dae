package pack

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
	"github.com/stratum-store/stratum/datanode/git/object"
)

// fastImport fills r with a generated history: commits that edit text and
// binary files in subdirectories (so git finds deltas), annotated tags, and
// a branch "base" at the middle of main. It returns the stream's size.
func fastImport(t testing.TB, r *gittest.Repo, commits int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	files := map[string][]byte{}
	var b bytes.Buffer
	for c := 1; c <= commits; c++ {
		fmt.Fprintf(&b, "commit refs/heads/main\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata 9\ncommit %02d\n", c, 1700000000+c, c%100)
		if c > 1 {
			fmt.Fprintf(&b, "from :%d\n", c-1)
		}
		picked := map[string]bool{} // a path once per commit: every blob stays reachable
		for len(picked) < 4 {
			path := fmt.Sprintf("d%d/f%d", rng.IntN(10), rng.IntN(5))
			if picked[path] {
				continue
			}
			picked[path] = true
			data := files[path]
			if strings.HasSuffix(path, "4") { // binary: random bytes, partly changed
				if data == nil {
					data = make([]byte, 1000+rng.IntN(7000))
				}
				for i := 0; i < 20; i++ {
					data[rng.IntN(len(data))] = byte(rng.Uint32())
				}
			} else { // text that grows
				data = append(data, fmt.Sprintf("line %d of commit %d: %x\n", len(data), c, rng.Uint64())...)
				if len(data) < 2000 {
					data = append(data, bytes.Repeat([]byte("lorem ipsum dolor sit amet\n"), 40)...)
				}
			}
			files[path] = data
			fmt.Fprintf(&b, "M 100644 inline %s\ndata %d\n", path, len(data))
			b.Write(data)
			b.WriteByte('\n')
		}
		if c%50 == 0 {
			fmt.Fprintf(&b, "tag v%d\nfrom :%d\ntagger T <t@example.com> %d +0000\ndata 4\ntag\n", c, c, 1700000000+c)
		}
		if c == commits/2 {
			fmt.Fprintf(&b, "reset refs/heads/base\nfrom :%d\n\n", c)
		}
	}
	r.Git(b.Bytes(), "fast-import", "--quiet")
}

type seen struct {
	id   string
	typ  string
	size int
}

// readAll reads a pack and returns "id type size" lines, sorted.
func readAll(t testing.TB, pack []byte, cfg Config) ([]string, Result, error) {
	t.Helper()
	var out []string
	res, err := Read(context.Background(), bytes.NewReader(pack), cfg, func(o Object) error {
		out = append(out, fmt.Sprintf("%s %s %d", o.ID, o.Type, len(o.Body)))
		return nil
	})
	sort.Strings(out)
	return out, res, err
}

func lines(b []byte) []string {
	s := strings.Split(strings.TrimSpace(string(b)), "\n")
	sort.Strings(s)
	return s
}

func diff(got, want []string) string {
	g := map[string]bool{}
	for _, s := range got {
		g[s] = true
	}
	w := map[string]bool{}
	var out []string
	for _, s := range want {
		w[s] = true
		if !g[s] {
			out = append(out, "missing "+s)
		}
	}
	for _, s := range got {
		if !w[s] {
			out = append(out, "extra "+s)
		}
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("... %d differences", len(out)))
	}
	return strings.Join(out, "; ")
}

// gitBase is a BaseSource reading from a repository with git cat-file.
func gitBase(r *gittest.Repo) BaseSource {
	return func(id object.ID) (object.Type, []byte, error) {
		ts, _, err := r.Exec(nil, "cat-file", "-t", id.String())
		if err != nil {
			return 0, nil, fmt.Errorf("%w: %s", ErrMissingBase, id)
		}
		t, err := object.ParseType(strings.TrimSpace(string(ts)))
		if err != nil {
			return 0, nil, err
		}
		body, _, err := r.Exec(nil, "cat-file", t.String(), id.String())
		return t, body, err
	}
}
