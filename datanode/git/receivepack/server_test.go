package receivepack

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// testRepo is the repository name every test pushes to.
const testRepo = "demo/hello.git"

// server is a real HTTP server on loopback that answers git push the way
// smarthttp will: the receive-pack advertisement after the `# service=`
// preamble, and POST git-receive-pack through Serve, over a Memory.
type server struct {
	*httptest.Server
	t   testing.TB
	mem *backend.Memory
	// beforeServe, if set (by setHook), runs at the start of every POST,
	// before Serve.
	beforeServe func()
	limits      Limits
	mu          sync.Mutex
	results     []Result
}

func newServer(t testing.TB) *server {
	s := &server{t: t, mem: backend.NewMemory()}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

// setHook sets beforeServe.
func (s *server) setHook(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beforeServe = fn
}

// url is the repository's URL for git.
func (s *server) url() string { return s.URL + "/" + testRepo }

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/"+testRepo+"/info/refs" &&
		r.URL.Query().Get("service") == "git-receive-pack":
		w.Header().Set("Content-Type", "application/x-git-receive-pack-advertisement")
		pw := pktline.NewWriter(w)
		pw.WriteString("# service=git-receive-pack\n")
		pw.Flush()
		if err := Advertise(ctx, w, s.mem, testRepo); err != nil {
			s.t.Errorf("Advertise: %v", err)
		}
	case r.Method == http.MethodPost && r.URL.Path == "/"+testRepo+"/git-receive-pack":
		s.receive(ctx, w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *server) receive(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	s.mu.Lock()
	hook := s.beforeServe
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	res, err := Serve(ctx, body, w, s.mem, testRepo, s.limits)
	if err != nil {
		s.t.Logf("Serve: %v", err)
	}
	s.mu.Lock()
	s.results = append(s.results, res)
	s.mu.Unlock()
}

// last returns the Result of the last push that had commands.
func (s *server) last() Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.results) - 1; i >= 0; i-- {
		if len(s.results[i].Commands) > 0 {
			return s.results[i]
		}
	}
	s.t.Fatal("no push reached the server")
	return Result{}
}

// refs returns the server's refs as "oid name" lines.
func (s *server) refs() string {
	s.t.Helper()
	refs, err := s.mem.Refs(context.Background(), testRepo)
	if err != nil {
		s.t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range refs {
		fmt.Fprintf(&b, "%s %s\n", r.OID, r.Name)
	}
	return b.String()
}

// post sends body as a raw POST git-receive-pack and returns the response.
func (s *server) post(t testing.TB, body []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url()+"/git-receive-pack", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// history fills r, a repository with a work tree, with a generated history
// through git fast-import: commits on main that edit text and binary files
// in a few directories (so git finds deltas), an annotated tag every 20
// commits, and a branch "base" at the middle. seed varies the content.
func history(t testing.TB, r *gittest.Repo, from string, commits int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	var b bytes.Buffer
	for c := 1; c <= commits; c++ {
		fmt.Fprintf(&b, "commit refs/heads/main\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata 10\ncommit %03d\n", c, 1700000000+c, c%1000)
		if c == 1 && from != "" {
			fmt.Fprintf(&b, "from %s\n", from)
		} else if c > 1 {
			fmt.Fprintf(&b, "from :%d\n", c-1)
		}
		picked := map[string]bool{} // a path once per commit: every blob stays reachable
		for len(picked) < 3 {
			path := fmt.Sprintf("d%d/f%d", rng.IntN(6), rng.IntN(4))
			if picked[path] {
				continue
			}
			picked[path] = true
			data := fileContent(rng, path, c)
			fmt.Fprintf(&b, "M 100644 inline %s\ndata %d\n%s\n", path, len(data), data)
		}
		if c%20 == 0 {
			fmt.Fprintf(&b, "tag t%d-%d\nfrom :%d\ntagger T <t@example.com> %d +0000\ndata 4\ntag\n", seed, c, c, 1700000000+c)
		}
		if c == commits/2 && from == "" {
			fmt.Fprintf(&b, "reset refs/heads/base\nfrom :%d\n\n", c)
		}
	}
	r.Git(b.Bytes(), "fast-import", "--quiet")
	r.Git(nil, "reset", "-q", "--hard", "main")
}

// fileContent is a few KiB that change a little each commit: the shared
// part makes git store most versions as deltas.
func fileContent(rng *rand.Rand, path string, c int) []byte {
	var b bytes.Buffer
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "%s line %d: the same text in every version\n", path, i)
	}
	fmt.Fprintf(&b, "changed in commit %d: %x\n", c, rng.Uint64())
	if strings.HasSuffix(path, "3") { // some binary bytes
		for i := 0; i < 64; i++ {
			b.WriteByte(byte(rng.Uint32()))
		}
	}
	return b.Bytes()
}

// gitPush runs git push in r (leading "-c", "key=value" pairs go to git
// itself) and returns what git printed (stdout, where --porcelain puts one
// line per ref, then stderr) and whether it succeeded.
func gitPush(t testing.TB, r *gittest.Repo, args ...string) (string, bool) {
	t.Helper()
	// A stalled transfer aborts after 30 s instead of hanging the test.
	cfg := []string{"-c", "http.lowSpeedLimit=1", "-c", "http.lowSpeedTime=30"}
	for len(args) > 1 && args[0] == "-c" { // git's own -c goes before "push"
		cfg, args = append(cfg, args[:2]...), args[2:]
	}
	stdout, stderr, err := r.Exec(nil, append(append(cfg, "push", "--porcelain"), args...)...)
	return string(stdout) + string(stderr), err == nil
}

// pktLines splits a response into its pkt-line payloads, demultiplexing
// side-band-64k band 1 if sideband is true.
func pktLines(t testing.TB, resp []byte, sideband bool) []string {
	t.Helper()
	var r io.Reader = bytes.NewReader(resp)
	if sideband {
		var data bytes.Buffer
		sr := pktline.NewSidebandReader(pktline.NewReader(r), io.Discard)
		if _, err := io.Copy(&data, sr); err != nil {
			t.Fatalf("side-band: %v in %q", err, resp)
		}
		r = &data
	}
	pr := pktline.NewReader(r)
	var out []string
	for {
		k, p, err := pr.ReadPacket()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("response %q: %v", resp, err)
		}
		if k == pktline.Flush {
			out = append(out, "0000")
			continue
		}
		out = append(out, strings.TrimSuffix(string(p), "\n"))
	}
}
