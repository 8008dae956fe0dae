package uploadpack

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
	"github.com/stratum-store/stratum/datanode/git/object"
	"github.com/stratum-store/stratum/datanode/git/pack"
	"github.com/stratum-store/stratum/datanode/git/packcache"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// gitTimeout bounds every git command of the tests.
const gitTimeout = 60 * time.Second

// generate appends commits to branch of r with git fast-import: each
// commit edits two files among 20 in 4 directories, so histories share
// most trees and blobs. Commit times are 1700000000 + 1000*(first+i);
// every tagEvery-th commit gets an annotated tag v<n> (0: none). The first
// commit's parent is from (a ref or commit; "" for a root commit).
func generate(t testing.TB, r *gittest.Repo, branch, from string, first, n, tagEvery int) {
	t.Helper()
	var b bytes.Buffer
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "commit refs/heads/%s\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata <<EOM\ncommit %d\nEOM\n",
			branch, i+1, 1700000000+1000*i, i)
		if i == first && from != "" {
			fmt.Fprintf(&b, "from %s^0\n", from)
		}
		for j := 0; j < 2; j++ {
			path := fmt.Sprintf("d%d/f%d", (i+j)%4, (i*7+j)%5)
			content := fmt.Sprintf("%s at commit %d\n%s", path, i, strings.Repeat("x", i%50))
			fmt.Fprintf(&b, "M 100644 inline %s\ndata %d\n%s\n", path, len(content), content)
		}
		if tagEvery > 0 && (i+1)%tagEvery == 0 {
			fmt.Fprintf(&b, "tag v%d\nfrom :%d\ntagger T <t@example.com> %d +0000\ndata 4\ntag\n", i+1, i+1, 1700000000+1000*i)
		}
	}
	r.Git(b.Bytes(), "fast-import", "--quiet")
}

// load copies every object and ref of r into repo of m, as a push would:
// the objects of `git pack-objects --all`, read with pack.Read, then the
// refs in one transaction (replacing the old ones).
func load(t testing.TB, m *backend.Memory, repo string, r *gittest.Repo) {
	t.Helper()
	packed := r.Git(nil, "pack-objects", "--all", "--stdout")
	var objs []backend.Object
	_, err := pack.Read(context.Background(), bytes.NewReader(packed), pack.Config{}, func(o pack.Object) error {
		objs = append(objs, backend.Object{OID: api.MustParseOID(o.ID.String()), Data: object.Canonical(o.Type, o.Body)})
		return nil
	})
	if err != nil {
		t.Fatalf("reading git's pack: %v", err)
	}
	if err := m.Put(context.Background(), objs); err != nil {
		t.Fatalf("Put: %v", err)
	}
	old := map[string]string{}
	cur, _ := m.Refs(context.Background(), repo)
	for _, ref := range cur {
		old[ref.Name] = ref.OID
	}
	var ups []backend.Update
	for _, line := range strings.Split(strings.TrimSpace(string(r.Git(nil, "for-each-ref", "--format=%(objectname) %(refname)"))), "\n") {
		oid, name, _ := strings.Cut(line, " ")
		o := old[name]
		if o == "" {
			o = api.ZeroOID
		}
		ups = append(ups, backend.Update{Name: name, Old: o, New: oid})
	}
	if err := m.Update(context.Background(), repo, ups); err != nil {
		t.Fatalf("Update refs: %v", err)
	}
}

// testServer is a loopback HTTP server over Advertise and Serve. It
// records the object count of each pack it sends.
type testServer struct {
	*httptest.Server
	mu    sync.Mutex
	packs []int
}

// lastPack is the object count of the last pack sent, -1 if none.
func (s *testServer) lastPack() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.packs) == 0 {
		return -1
	}
	return s.packs[len(s.packs)-1]
}

// packCount is the number of packs sent so far.
func (s *testServer) packCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.packs)
}

// Write notes the object count of a pack whose header starts a band-1
// packet in p (SidebandWriter writes one packet per call), before the
// bytes reach the client: so a test that waits for git sees the count.
func (s *testServer) record(p []byte) {
	i := bytes.Index(p, []byte("\x01PACK\x00\x00\x00\x02"))
	if i < 0 || len(p) < i+13 {
		return
	}
	s.mu.Lock()
	s.packs = append(s.packs, int(binary.BigEndian.Uint32(p[i+9:])))
	s.mu.Unlock()
}

// recorder passes writes to w after ts has looked at them.
type recorder struct {
	ts *testServer
	w  io.Writer
}

func (r recorder) Write(p []byte) (int, error) {
	r.ts.record(p)
	return r.w.Write(p)
}

// server serves the smart HTTP routes of every repository of b the way
// smarthttp will: GET /<repo>/info/refs?service=git-upload-pack and POST
// /<repo>/git-upload-pack, protocol v2 when the Git-Protocol header asks.
func server(t testing.TB, b backend.Backend) *testServer {
	t.Helper()
	return cachedServer(t, b, nil)
}

// cachedServer is server with a pack cache (nil: none).
func cachedServer(t testing.TB, b backend.Backend, cache *packcache.Cache) *testServer {
	t.Helper()
	ts := &testServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v2 := strings.Contains(r.Header.Get("Git-Protocol"), "version=2")
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs"):
			repo := strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/info/refs"), "/")
			w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
			pw := pktline.NewWriter(w)
			pw.WriteString("# service=git-upload-pack\n")
			pw.Flush()
			if err := Advertise(r.Context(), w, b, repo, v2); err != nil {
				t.Logf("Advertise: %v", err)
			}
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			repo := strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/git-upload-pack"), "/")
			body := io.Reader(r.Body)
			if r.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				body = zr
			}
			w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
			if err := (Server{Cache: cache}).Serve(r.Context(), body, recorder{ts, w}, b, repo, v2); err != nil {
				t.Logf("Serve: %v", err)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

// gitIn runs git in dir with a deadline, returning stdout, stderr and the
// error. GIT_TRACE_PACKET can be added through env.
func gitIn(t testing.TB, dir string, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_TERMINAL_PROMPT=0")
	cmd.Env = append(cmd.Env, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("git %s: timed out after %v\n%s", strings.Join(args, " "), gitTimeout, e.String())
	}
	return o.String(), e.String(), err
}

// mustGit is gitIn that fails the test when git fails.
func mustGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	o, e, err := gitIn(t, dir, nil, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, e)
	}
	return o
}

// sortedLines splits s into lines, sorted.
func sortedLines(s string) []string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(l)
	return l
}

// pktlineData frames s as one data pkt-line.
func pktlineData(s string) (string, error) {
	b, err := pktline.AppendData(nil, []byte(s))
	return string(b), err
}
