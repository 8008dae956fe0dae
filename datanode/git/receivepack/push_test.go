package receivepack

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
)

// sameObjects checks that every object of r is in the server's Memory with
// the same canonical bytes, and returns how many there are.
func sameObjects(t *testing.T, s *server, r *gittest.Repo) int {
	t.Helper()
	out := bufio.NewReader(bytes.NewReader(r.Git(nil, "cat-file", "--batch-all-objects", "--batch")))
	n := 0
	for {
		hdr, err := out.ReadString('\n')
		if err != nil {
			return n
		}
		f := strings.Fields(hdr)
		size, _ := strconv.Atoi(f[2])
		body := make([]byte, size+1)
		if _, err := io.ReadFull(out, body); err != nil {
			t.Fatalf("cat-file output: %v", err)
		}
		want := append(fmt.Appendf(nil, "%s %d\x00", f[1], size), body[:size]...)
		got, ok := s.mem.Object(api.MustParseOID(f[0]))
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("object %s %s: stored %v, bytes equal %v; want the bytes git has", f[1], f[0], ok, bytes.Equal(got, want))
		}
		n++
	}
}

// localRefs returns r's refs in the server's format ("oid name" lines).
func localRefs(t *testing.T, r *gittest.Repo) string {
	t.Helper()
	return string(r.Git(nil, "for-each-ref", "--format=%(objectname) %(refname)"))
}

// TestPushThenThinPush pushes a generated repository (a few hundred
// objects, most blobs stored as deltas), checks that Memory holds exactly
// git's objects and refs, then pushes more commits: git sends a thin pack
// whose delta bases are read back from Memory.
func TestPushThenThinPush(t *testing.T) {
	s := newServer(t)
	r := gittest.New(t, false)
	history(t, r, "", 60, 1)
	// A post buffer smaller than the pack makes git probe with an empty
	// request first, then stream the body chunked.
	if out, ok := gitPush(t, r, "-c", "http.postBuffer=65536", s.url(), "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"); !ok {
		t.Fatalf("first push failed:\n%s", out)
	}
	s.mu.Lock()
	posts, probe := len(s.results), len(s.results[0].Commands)
	s.mu.Unlock()
	if posts != 2 || probe != 0 {
		t.Fatalf("first push: %d POSTs, the first with %d commands; want git's probe, then the push", posts, probe)
	}
	if got, want := s.refs(), localRefs(t, r); got != want {
		t.Fatalf("refs after the first push:\n%s\nwant:\n%s", got, want)
	}
	n := sameObjects(t, s, r)
	res := s.last()
	if res.Stored != n || res.Pack.Deltas == 0 || n < 300 {
		t.Fatalf("first push stored %d objects (%d deltas); git has %d; want equal, with deltas, at least 300", res.Stored, res.Pack.Deltas, n)
	}

	history(t, r, r.Line(nil, "rev-parse", "main"), 10, 2)
	out, ok := gitPush(t, r, "--progress", s.url(), "main") // no quiet: band 2 reaches git
	if !ok || !strings.Contains(out, "remote: stratum: received") {
		t.Fatalf("second push: ok %v, git printed:\n%s\nwant success and our progress note", ok, out)
	}
	t.Logf("first push: %d objects, %d deltas", n, res.Pack.Deltas)
	sameObjects(t, s, r)
	if got, want := s.refs(), localRefs(t, r); got != want {
		t.Fatalf("refs after the second push:\n%s\nwant:\n%s", got, want)
	}
	if res := s.last(); res.Pack.ExternalBases == 0 || res.Pack.Objects >= n {
		t.Fatalf("second push: %d objects, %d bases from Memory; want a thin pack (bases > 0)", res.Pack.Objects, res.Pack.ExternalBases)
	}
}

// TestPushDelete deletes a branch and a tag, then (raw) a ref that does not
// exist, which Git reports ok.
func TestPushDelete(t *testing.T) {
	s := newServer(t)
	r := gittest.New(t, false)
	history(t, r, "", 20, 3)
	if out, ok := gitPush(t, r, s.url(), "main", "base", "t3-20"); !ok {
		t.Fatalf("push failed:\n%s", out)
	}
	if out, ok := gitPush(t, r, s.url(), ":base", ":refs/tags/t3-20"); !ok {
		t.Fatalf("delete failed:\n%s", out)
	}
	want := r.Line(nil, "rev-parse", "main") + " refs/heads/main\n"
	if got := s.refs(); got != want {
		t.Fatalf("refs after the delete:\n%s\nwant:\n%s", got, want)
	}
	resp := s.post(t, request0(api.ZeroOID+" "+api.ZeroOID+" refs/heads/gone\x00report-status", nil))
	if got := strings.Join(pktLines(t, resp, false), "|"); got != "unpack ok|ok refs/heads/gone|0000" {
		t.Fatalf("deleting a ref that does not exist: got %q; want ok", got)
	}
}

// request0 builds a receive-pack request: command lines, a flush, then the
// pack (nil for none).
func request0(cmds ...any) []byte {
	var b bytes.Buffer
	for _, c := range cmds[:len(cmds)-1] {
		s := c.(string) + "\n"
		fmt.Fprintf(&b, "%04x%s", len(s)+4, s)
	}
	b.WriteString("0000")
	if p, _ := cmds[len(cmds)-1].([]byte); p != nil {
		b.Write(p)
	}
	return b.Bytes()
}
