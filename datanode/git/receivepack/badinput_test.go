package receivepack

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
	"github.com/stratum-store/stratum/datanode/git/object"
	"github.com/stratum-store/stratum/datanode/git/pack"
)

// obj is a type and body for rawPack.
type obj struct {
	t    object.Type
	body []byte
}

// rawPack writes objs as a pack of whole objects.
func rawPack(t testing.TB, objs ...obj) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := pack.NewWriter(&b, uint32(len(objs)))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if _, err := w.Add(o.t, o.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// id hashes an object body.
func id(t testing.TB, o obj) string {
	t.Helper()
	h, err := object.Hash(o.t, o.body)
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// smallHistory returns a blob, a tree holding it and a commit of the tree.
func smallHistory(t testing.TB) (blob, tree, commit obj) {
	blob = obj{object.Blob, []byte("hello\n")}
	bid, _ := object.ParseID(id(t, blob))
	tree = obj{object.Tree, object.WriteTree([]object.TreeEntry{{Mode: object.ModeFile, Name: "hello.txt", ID: bid}})}
	commit = obj{object.Commit, fmt.Appendf(nil,
		"tree %s\nauthor A <a@example.com> 1700000000 +0000\ncommitter C <c@example.com> 1700000000 +0000\n\nfirst\n", id(t, tree))}
	return blob, tree, commit
}

// create is the command creating refs/heads/x at tip, with capabilities.
func create(tip, caps string) string {
	return api.ZeroOID + " " + tip + " refs/heads/x\x00" + caps
}

// TestBadPackChangesNothing sends hand-made bad packs in raw POSTs: each is
// refused with `unpack <reason>`, the ref gets `unpacker error`, and
// nothing is stored.
func TestBadPackChangesNothing(t *testing.T) {
	blob, tree, commit := smallHistory(t)
	good := rawPack(t, blob, tree, commit)
	flip := func(i int) []byte { p := bytes.Clone(good); p[i] ^= 0x40; return p }
	cases := []struct {
		name, reason string
		pack         []byte
		limits       Limits
	}{
		{"byte flipped in an entry", "corrupt", flip(len(good) / 2), Limits{}},
		{"bad checksum", "checksum", flip(len(good) - 1), Limits{}},
		{"truncated", "truncated", good[:len(good)-30], Limits{}},
		{"not a pack", "corrupt", []byte("this is not a pack file at all, not even close"), Limits{}},
		{"over the size limit", "over the size limit", good, Limits{MaxPackBytes: 64}},
		{"too many objects", "", good, Limits{MaxObjects: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t)
			s.limits = c.limits
			resp := s.post(t, request0(create(id(t, commit), "report-status"), c.pack))
			lines := pktLines(t, resp, false)
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "unpack ") || lines[0] == "unpack ok" ||
				!strings.Contains(lines[0], c.reason) || lines[1] != "ng refs/heads/x unpacker error" {
				t.Fatalf("got %q; want unpack <reason with %q>, ng refs/heads/x unpacker error", lines, c.reason)
			}
			t.Log(lines[0])
			if s.mem.Puts != 0 || s.refs() != "" {
				t.Fatalf("after a refused pack: %d Put calls, refs %q; want none", s.mem.Puts, s.refs())
			}
		})
	}
	t.Run("good pack, control", func(t *testing.T) {
		s := newServer(t)
		lines := pktLines(t, s.post(t, request0(create(id(t, commit), "report-status"), good)), false)
		if strings.Join(lines, "|") != "unpack ok|ok refs/heads/x|0000" || s.refs() == "" {
			t.Fatalf("the unharmed pack: got %q, refs %q; want accepted", lines, s.refs())
		}
	})
}

// TestMissingObjectsAreRefused: a commit whose tree is neither in the pack
// nor stored, or a tip that is nowhere, gets `missing necessary objects`
// and changes nothing; once the tree is stored the same push is accepted.
func TestMissingObjectsAreRefused(t *testing.T) {
	blob, tree, commit := smallHistory(t)
	s := newServer(t)
	missing := request0(create(id(t, commit), "report-status"), rawPack(t, blob, commit))
	nowhere := request0(create(strings.Repeat("ab", 20), "report-status"), rawPack(t))
	for _, body := range [][]byte{missing, nowhere} {
		lines := pktLines(t, s.post(t, body), false)
		if strings.Join(lines, "|") != "unpack ok|ng refs/heads/x missing necessary objects|0000" {
			t.Fatalf("got %q; want unpack ok, ng refs/heads/x missing necessary objects", lines)
		}
		if s.mem.Puts != 0 || s.refs() != "" {
			t.Fatalf("after a refused push: %d Put calls, refs %q; want none", s.mem.Puts, s.refs())
		}
	}
	tid := api.MustParseOID(id(t, tree))
	if err := s.mem.Put(context.Background(), []backend.Object{{OID: tid, Data: object.Canonical(tree.t, tree.body)}}); err != nil {
		t.Fatal(err)
	}
	lines := pktLines(t, s.post(t, missing), false)
	if strings.Join(lines, "|") != "unpack ok|ok refs/heads/x|0000" {
		t.Fatalf("with the tree stored: got %q; want accepted", lines)
	}
}

// TestObjectFailingFsckIsRefused pushes, with stock git, a commit whose
// tree has an entry named ".git" (made with hash-object --literally, as no
// porcelain would): git prints the unpack error naming fsck's message ID.
func TestObjectFailingFsckIsRefused(t *testing.T) {
	s := newServer(t)
	r := gittest.New(t, false)
	blob := r.Line([]byte("x\n"), "hash-object", "-w", "--stdin")
	bid, _ := object.ParseID(blob)
	body := append([]byte("100644 .git\x00"), bid[:]...)
	tree := r.Line(body, "hash-object", "-t", "tree", "--literally", "-w", "--stdin")
	commit := r.Line(nil, "commit-tree", tree, "-m", "bad")
	r.Git(nil, "update-ref", "refs/heads/main", commit)
	out, ok := gitPush(t, r, s.url(), "main")
	if ok || !strings.Contains(out, "hasDotgit") || !strings.Contains(out, "(unpacker error)") {
		t.Fatalf("push of a .git tree: ok %v, git printed:\n%s\nwant refused, unpack error naming hasDotgit", ok, out)
	}
	t.Logf("git printed:\n%s", out)
	if s.mem.Puts != 0 || s.refs() != "" {
		t.Fatalf("after a refused push: %d Put calls, refs %q; want none", s.mem.Puts, s.refs())
	}
}

// TestConnectivityRule: a tree entry naming a blob that is nowhere is
// missing, as is a tag's target; a gitlink (mode 160000, a commit of
// another repository) is not followed, as git does not.
func TestConnectivityRule(t *testing.T) {
	blob, _, _ := smallHistory(t)
	bid, _ := object.ParseID(id(t, blob))
	other, _ := object.ParseID(strings.Repeat("cd", 20))
	commitOf := func(tree obj) obj {
		return obj{object.Commit, fmt.Appendf(nil,
			"tree %s\nauthor A <a@example.com> 1700000000 +0000\ncommitter C <c@example.com> 1700000000 +0000\n\nm\n", id(t, tree))}
	}
	withBlob := obj{object.Tree, object.WriteTree([]object.TreeEntry{{Mode: object.ModeFile, Name: "f", ID: bid}})}
	withLink := obj{object.Tree, object.WriteTree([]object.TreeEntry{{Mode: object.ModeFile, Name: "f", ID: bid},
		{Mode: object.ModeSubmodule, Name: "sub", ID: other}})}
	tag := obj{object.Tag, fmt.Appendf(nil, "object %s\ntype commit\ntag v1\ntagger T <t@example.com> 1700000000 +0000\n\nv1\n", other)}
	cases := []struct {
		name string
		tip  obj
		objs []obj
		want string
	}{
		{"blob missing", commitOf(withBlob), []obj{withBlob, commitOf(withBlob)}, "ng refs/heads/x missing necessary objects"},
		{"blob in the pack", commitOf(withBlob), []obj{blob, withBlob, commitOf(withBlob)}, "ok refs/heads/x"},
		{"gitlink not followed", commitOf(withLink), []obj{blob, withLink, commitOf(withLink)}, "ok refs/heads/x"},
		{"tag target missing", tag, []obj{tag}, "ng refs/heads/x missing necessary objects"},
	}
	for _, c := range cases {
		s := newServer(t)
		lines := pktLines(t, s.post(t, request0(create(id(t, c.tip), "report-status"), rawPack(t, c.objs...))), false)
		if len(lines) != 3 || lines[0] != "unpack ok" || lines[1] != c.want {
			t.Errorf("%s: got %q; want unpack ok, %s", c.name, lines, c.want)
		}
	}
}

// TestBadPackAfterAFullBatchMovesNoRef: objects are stored a full batch at
// a time while the pack is read, so a pack that turns out bad after a full
// batch leaves that batch's verified objects stored (unreferenced, as a
// push that loses its ref race leaves its objects) and moves no ref; with
// an invalid command list nothing is stored at all.
func TestBadPackAfterAFullBatchMovesNoRef(t *testing.T) {
	blob, tree, commit := smallHistory(t)
	good := rawPack(t, blob, tree, commit)
	s := newServer(t)
	s.limits = Limits{BatchObjects: 1, PutConcurrency: 1}
	lines := pktLines(t, s.post(t, request0(create(id(t, commit), "report-status"), good[:len(good)-30])), false)
	if len(lines) != 3 || !strings.Contains(lines[0], "truncated") || lines[1] != "ng refs/heads/x unpacker error" {
		t.Fatalf("got %q; want unpack <truncated>, ng refs/heads/x unpacker error", lines)
	}
	if s.mem.Puts == 0 || s.refs() != "" {
		t.Fatalf("after a pack cut in its last object: %d Put calls, refs %q; want the first batches stored, no ref", s.mem.Puts, s.refs())
	}
	s = newServer(t)
	s.limits = Limits{BatchObjects: 1, PutConcurrency: 1}
	bad := api.ZeroOID + " " + id(t, commit) + " refs/heads/x..y\x00report-status"
	lines = pktLines(t, s.post(t, request0(bad, good)), false)
	if len(lines) != 3 || lines[0] != "unpack ok" || s.mem.Puts != 0 || s.refs() != "" {
		t.Fatalf("an invalid ref name: got %q, %d Put calls, refs %q; want unpack ok, a refusal, no Put, no ref", lines, s.mem.Puts, s.refs())
	}
}
