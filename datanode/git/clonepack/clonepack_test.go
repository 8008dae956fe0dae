package clonepack_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/clonepack"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
	"github.com/stratum-store/stratum/datanode/git/receivepack"
	"github.com/stratum-store/stratum/datanode/git/smarthttp"
	"github.com/stratum-store/stratum/datanode/git/uploadpack"
)

const repo = "demo/a.git"

// serve runs the smart HTTP routes of b on loopback, both services, with
// packs of any size kept for clones.
func serve(t *testing.T, b backend.Backend) string {
	t.Helper()
	p := smarthttp.Protocol{
		AdvertiseUpload:  uploadpack.Advertise,
		ServeUpload:      uploadpack.Server{}.Serve,
		AdvertiseReceive: receivepack.Advertise,
		ServeReceive: func(ctx context.Context, r io.Reader, w io.Writer, b backend.Backend, repo string) error {
			_, err := receivepack.Serve(ctx, r, w, b, repo, receivepack.Limits{KeepCloneMinObjects: 1, TempDir: t.TempDir()})
			return err
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		req, err := smarthttp.ParseRoute(r.Method, r.URL.Path, r.URL.Query().Get("service"))
		if err == nil {
			err = req.CheckHeaders(r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"), r.Header.Get("Git-Protocol"))
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", req.ContentType())
		if req.Advertise {
			if err := p.Advertise(ctx, w, b, req); err != nil {
				t.Logf("advertise: %v", err)
			}
			return
		}
		body, err := p.Body(req, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := p.Serve(ctx, body, w, b, req); err != nil {
			t.Logf("serve: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + smarthttp.PathPrefix + repo
}

// history appends n commits to branch with fast-import (from: the first
// commit's parent, "" for a root), an annotated tag on every 10th.
func history(t *testing.T, r *gittest.Repo, branch, from string, first, n int) {
	t.Helper()
	var b bytes.Buffer
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "commit refs/heads/%s\nmark :%d\ncommitter C <c@example.com> %d +0000\ndata 9\ncommit %02d\n", branch, i+1, 1700000000+i, i%100)
		if i == first && from != "" {
			fmt.Fprintf(&b, "from %s^0\n", from)
		}
		content := fmt.Sprintf("%s %d\n%s", branch, i, strings.Repeat("y", i%40))
		fmt.Fprintf(&b, "M 100644 inline d%d/f%d\ndata %d\n%s\n", i%3, i%7, len(content), content)
		if (i+1)%10 == 0 {
			fmt.Fprintf(&b, "tag %s-v%d\nfrom :%d\ntagger T <t@example.com> %d +0000\ndata 4\ntag\n", branch, i+1, i+1, 1700000000+i)
		}
	}
	r.Git(b.Bytes(), "fast-import", "--quiet")
}

// git runs stock git in dir and returns stdout and stderr, failing the
// test if it fails.
func git(t *testing.T, dir string, args ...string) (string, string) {
	t.Helper()
	o, e, err := gitErr(t, dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, e)
	}
	return o, e
}

func gitErr(t *testing.T, dir string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_TERMINAL_PROMPT=0")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), err
}

const refFormat = "--format=%(objectname) %(refname)"

// cloner clones url and checks the clone against src: the same refs,
// `git fsck --strict` clean. It reports whether the kept pack was sent.
func cloner(t *testing.T, url string, src *gittest.Repo) func(proto string, extra ...string) bool {
	return func(proto string, extra ...string) bool {
		t.Helper()
		dir := t.TempDir()
		args := append([]string{"-c", "protocol.version=" + proto, "clone", "--progress", "--mirror"}, extra...)
		_, stderr := git(t, dir, append(args, url, "c")...)
		c := filepath.Join(dir, "c")
		got, _ := git(t, c, "for-each-ref", refFormat)
		if want := string(src.Git(nil, "for-each-ref", refFormat)); len(extra) == 0 && got != want {
			t.Fatalf("clone's refs:\n%s\nwant\n%s", got, want)
		}
		git(t, c, "fsck", "--strict", "--no-dangling")
		return strings.Contains(stderr, "Reusing the pushed pack")
	}
}

// TestPushedPackServesClonesWhileTheRefsMatch: a first push keeps its pack
// and clones over either protocol are that pack; a push that moves a ref
// makes clones generated again, and forcing the ref back makes the kept
// pack match again. Every clone is checked against the source.
func TestPushedPackServesClonesWhileTheRefsMatch(t *testing.T) {
	m := backend.NewMemory()
	url := serve(t, m)
	src := gittest.New(t, true)
	history(t, src, "main", "", 0, 40)
	history(t, src, "side", "refs/heads/main~5", 100, 12)
	git(t, src.Dir, "push", "-q", "--mirror", url)
	kept := hiddenRef(t, m)
	if kept == "" {
		t.Fatalf("no %s after the first push", clonepack.Ref)
	}
	clone := cloner(t, url, src)
	if !clone("2") || !clone("0") {
		t.Fatal("a full clone after the first push was not the kept pack")
	}
	if clone("2", "--single-branch", "--branch", "side") {
		t.Fatal("a clone of one branch was sent the kept pack, which holds every ref")
	}
	if out, _ := git(t, src.Dir, "ls-remote", url); strings.Contains(out, "refs/stratum") {
		t.Fatalf("ls-remote shows the hidden ref:\n%s", out)
	}

	old := src.Line(nil, "rev-parse", "refs/heads/main")
	history(t, src, "main", "refs/heads/main", 40, 3)
	git(t, src.Dir, "push", "-q", url, "main")
	if got := hiddenRef(t, m); got != kept {
		t.Fatalf("an incremental push moved %s from %s to %s", clonepack.Ref, kept, got)
	}
	if clone("2") {
		t.Fatal("a clone after main moved was sent the kept pack")
	}
	src.Git(nil, "update-ref", "refs/heads/main", old)
	git(t, src.Dir, "push", "-q", "--force", url, "main")
	if !clone("2") {
		t.Fatal("a clone after main came back was not the kept pack")
	}
}

// TestKeptPackOfABranchPushedBesideOthers: a self-contained push to a
// repository that has other refs keeps a pack complete only for its own
// ref. Clones are generated while the other refs exist, and are the kept
// pack once they are deleted, when it is complete for every ref.
func TestKeptPackOfABranchPushedBesideOthers(t *testing.T) {
	m := backend.NewMemory()
	url := serve(t, m)
	src := gittest.New(t, true)
	history(t, src, "main", "", 0, 15)
	git(t, src.Dir, "push", "-q", url, "main", "main-v10")
	history(t, src, "orphan", "", 200, 20) // no common history: its pack is self-contained
	git(t, src.Dir, "push", "-q", url, "orphan", "orphan-v210", "orphan-v220")
	if man := manifest(t, m); len(man.Refs) != 3 || man.Refs["refs/heads/orphan"] == "" {
		t.Fatalf("manifest refs %v; want the orphan push's three", man.Refs)
	}
	clone := cloner(t, url, src)
	if clone("2") {
		t.Fatal("a clone while main exists was sent the pack kept for orphan alone")
	}
	git(t, src.Dir, "push", "-q", url, ":main", ":main-v10")
	src.Git(nil, "update-ref", "-d", "refs/heads/main")
	src.Git(nil, "tag", "-d", "main-v10")
	if !clone("2") {
		t.Fatal("a clone of exactly the orphan push's refs was not its kept pack")
	}
}

// TestPushNotKept: an incremental push (thin, naming stored objects) is
// not kept; pushing to the hidden namespace is refused.
func TestPushNotKept(t *testing.T) {
	m := backend.NewMemory()
	url := serve(t, m)
	src := gittest.New(t, true)
	history(t, src, "main", "", 0, 5)
	git(t, src.Dir, "push", "-q", url, "main")
	first := hiddenRef(t, m)
	history(t, src, "main", "refs/heads/main", 5, 5)
	git(t, src.Dir, "push", "-q", url, "main")
	if got := hiddenRef(t, m); got != first {
		t.Fatalf("%s moved on an incremental push: %s -> %s", clonepack.Ref, first, got)
	}
	_, stderr, err := gitErr(t, src.Dir, "push", url, "main:refs/stratum/clone-pack")
	if err == nil || !strings.Contains(stderr, "reserved") {
		t.Fatalf("push to the hidden ref: err %v, stderr:\n%s", err, stderr)
	}
	if got := hiddenRef(t, m); got != first {
		t.Fatalf("a push to the hidden ref moved it: %s -> %s", first, got)
	}
}

// TestMissingOrDamagedPack: a kept pack that was deleted is not used (the
// clone is generated and complete); one whose bytes are damaged fails its
// check at the end of the stream, so git refuses what it received.
func TestMissingOrDamagedPack(t *testing.T) {
	m := backend.NewMemory()
	damaged := &damaging{Memory: m}
	url := serve(t, damaged)
	src := gittest.New(t, true)
	history(t, src, "main", "", 0, 20)
	git(t, src.Dir, "push", "-q", "--mirror", url)
	man := manifest(t, m)

	damaged.on.Store(true)
	dir := t.TempDir()
	if _, stderr, err := gitErr(t, dir, "clone", "-q", "--mirror", url, "c"); err == nil {
		t.Fatalf("a clone of a damaged kept pack succeeded; stderr:\n%s", stderr)
	}
	damaged.on.Store(false)

	m.Delete(api.MustParseOID(man.Pack))
	if cloner(t, url, src)("2") {
		t.Fatal("a deleted pack was sent")
	}
}

// damaging is a Memory whose Open flips a byte in the middle of what it
// returns while on is set.
type damaging struct {
	*backend.Memory
	on atomic.Bool
}

func (d *damaging) Open(ctx context.Context, oid api.OID) (io.ReadCloser, int64, error) {
	r, size, err := d.Memory.Open(ctx, oid)
	if err != nil || !d.on.Load() {
		return r, size, err
	}
	data, _ := io.ReadAll(r)
	data = bytes.Clone(data)
	data[len(data)/2] ^= 0x40
	return io.NopCloser(bytes.NewReader(data)), size, nil
}

// TestOpenRefuses: what Open refuses before sending a byte.
func TestOpenRefuses(t *testing.T) {
	m := backend.NewMemory()
	ctx := context.Background()
	packBytes := []byte("PACK\x00\x00\x00\x02\x00\x00\x00\x00")
	sum := sha1.Sum(packBytes)
	packBytes = append(packBytes, sum[:]...)
	packID, _ := api.Digest(api.SHA256, packBytes)
	if err := m.PutStream(ctx, packID, bytes.NewReader(packBytes), int64(len(packBytes))); err != nil {
		t.Fatal(err)
	}
	tip := strings.Repeat("a", 40)
	man := clonepack.Manifest{Version: 1, Pack: packID.String(), Size: int64(len(packBytes)), OfsDeltas: true,
		Refs: map[string]string{"refs/heads/main": tip}}
	data, manID, _ := man.Encode()
	if err := m.Put(ctx, []backend.Object{{OID: manID, Data: data}}); err != nil {
		t.Fatal(err)
	}
	refs := []backend.Ref{{Name: "refs/heads/main", OID: tip}, {Name: clonepack.Ref, OID: manID.String()}}
	f := func(name string, c clonepack.Clone, wantOK bool) {
		t.Helper()
		r, _, err := clonepack.Open(ctx, m, c)
		if wantOK {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, packBytes) {
				t.Fatalf("%s: read %x, %v; want %x", name, got, err, packBytes)
			}
			return
		}
		if !errors.Is(err, clonepack.ErrUnusable) {
			t.Fatalf("%s: Open error %v; want ErrUnusable", name, err)
		}
	}
	f("match", clonepack.Clone{Refs: refs, Wants: []string{tip, tip}, OfsDelta: true}, true)
	f("no ofs-delta", clonepack.Clone{Refs: refs, Wants: []string{tip}}, false)
	f("fewer wants", clonepack.Clone{Refs: refs, OfsDelta: true}, false)
	f("other want", clonepack.Clone{Refs: refs, Wants: []string{strings.Repeat("b", 40)}, OfsDelta: true}, false)
	extra := append(refs[:1:1], backend.Ref{Name: "refs/heads/x", OID: tip}, refs[1])
	f("extra ref", clonepack.Clone{Refs: extra, Wants: []string{tip}, OfsDelta: true}, false)
	f("no hidden ref", clonepack.Clone{Refs: refs[:1], Wants: []string{tip}, OfsDelta: true}, false)
	moved := []backend.Ref{{Name: "refs/heads/main", OID: strings.Repeat("c", 40)}, refs[1]}
	f("moved ref", clonepack.Clone{Refs: moved, Wants: []string{moved[0].OID}, OfsDelta: true}, false)
}

func hiddenRef(t *testing.T, m *backend.Memory) string {
	t.Helper()
	refs, err := m.Refs(context.Background(), repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if r.Name == clonepack.Ref {
			return r.OID
		}
	}
	return ""
}

func manifest(t *testing.T, m *backend.Memory) clonepack.Manifest {
	t.Helper()
	id := hiddenRef(t, m)
	if id == "" {
		t.Fatalf("no %s", clonepack.Ref)
	}
	data, ok := m.Object(api.MustParseOID(id))
	if !ok {
		t.Fatalf("manifest %s not stored", id)
	}
	var man clonepack.Manifest
	if err := json.Unmarshal(data, &man); err != nil {
		t.Fatal(err)
	}
	return man
}

// TestConcurrentCreatingPushes: two pushes that each create a branch of
// the same new repository, at once, are both self-contained. Whichever
// publishes its pack (or both, one after the other), no manifest covers
// both branches, so clones are generated, and complete.
func TestConcurrentCreatingPushes(t *testing.T) {
	for round := range 3 {
		m := backend.NewMemory()
		url := serve(t, m)
		src := gittest.New(t, true)
		history(t, src, "a", "", 0, 12)
		history(t, src, "b", "", 300, 12)
		errs := make(chan string, 2)
		for _, refs := range [][]string{{"a", "a-v10"}, {"b", "b-v310"}} {
			branch := refs[0]
			go func() {
				_, stderr, err := gitErr(t, src.Dir, append([]string{"push", "-q", url}, refs...)...)
				if err != nil {
					errs <- fmt.Sprintf("push %s: %v\n%s", branch, err, stderr)
					return
				}
				errs <- ""
			}()
		}
		for range 2 {
			if e := <-errs; e != "" {
				t.Fatal(e)
			}
		}
		if man := manifest(t, m); len(man.Refs) != 2 {
			t.Fatalf("round %d: manifest refs %v; want one push's branch and tag", round, man.Refs)
		}
		if cloner(t, url, src)("2") {
			t.Fatalf("round %d: a clone of both branches was sent one push's pack", round)
		}
	}
}
