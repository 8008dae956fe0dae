package object

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
)

func mustID(t *testing.T, s string) ID {
	t.Helper()
	id, err := ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func hashOf(t *testing.T, ty Type, body []byte) ID {
	t.Helper()
	id, err := Hash(ty, body)
	if err != nil {
		t.Fatalf("Hash(%s): %v", ty, err)
	}
	return id
}

// TestMatchesStockGit builds blobs, trees, commits and tags with stock git
// and checks that IDs, parse results and checks agree.
func TestMatchesStockGit(t *testing.T) {
	r := gittest.New(t, false)
	rng := rand.New(rand.NewPCG(1, 2))
	bin := make([]byte, 70000)
	for i := range bin {
		bin[i] = byte(rng.Uint32())
	}
	blobs := map[string][]byte{"empty": nil, "text": []byte("hello\n"), "bin": bin}
	blobIDs := map[string]ID{}
	for name, b := range blobs {
		want := r.Line(b, "hash-object", "-w", "--stdin")
		if got := hashOf(t, Blob, b); got.String() != want {
			t.Fatalf("blob %s: got %s; want %s", name, got, want)
		}
		blobIDs[name] = mustID(t, want)
	}
	sub := r.Line([]byte("100644 blob "+blobIDs["text"].String()+"\tf\n"), "mktree")
	// Names chosen so that git's directory order matters: "a" (dir) sorts after "a.c".
	mk := "100644 blob " + blobIDs["text"].String() + "\ta.c\n" +
		"040000 tree " + sub + "\ta\n" +
		"100755 blob " + blobIDs["bin"].String() + "\trun\n" +
		"120000 blob " + blobIDs["text"].String() + "\tlink\n" +
		"160000 commit 1111111111111111111111111111111111111111\tmodule\n" +
		"100644 blob " + blobIDs["empty"].String() + "\ta-b\n"
	tree := r.Line([]byte(mk), "mktree", "--missing")
	treeBody := r.Git(nil, "cat-file", "tree", tree)
	if got := hashOf(t, Tree, treeBody); got.String() != tree {
		t.Fatalf("tree: got %s; want %s", got, tree)
	}
	entries, err := ParseTree(treeBody)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if got, want := strings.Join(names, " "), "a-b a.c a link module run"; got != want {
		t.Fatalf("tree order: got %q; want %q", got, want)
	}
	if !bytes.Equal(WriteTree(entries), treeBody) {
		t.Fatalf("WriteTree(ParseTree(tree)) differs from git's tree")
	}
	if entries[2].Mode != ModeDir || entries[2].ID.String() != sub || entries[5].Mode != ModeExecutable {
		t.Fatalf("entries: got %+v", entries)
	}
	c1 := r.Line([]byte("first\n"), "commit-tree", tree)
	c2 := r.Line([]byte("second\n"), "commit-tree", sub, "-p", c1)
	merge := r.Line([]byte("merge\n"), "commit-tree", tree, "-p", c1, "-p", c2)
	tagBody := []byte("object " + merge + "\ntype commit\ntag v1\ntagger T <t@example.com> 1700000200 +0000\n\nrelease\n")
	tag := r.Line(tagBody, "mktag")
	for _, c := range []struct {
		ty   Type
		id   string
		kind string
	}{{Commit, c1, "commit"}, {Commit, merge, "commit"}, {Tag, tag, "tag"}, {Tree, tree, "tree"}} {
		body := r.Git(nil, "cat-file", c.kind, c.id)
		if got := hashOf(t, c.ty, body); got.String() != c.id {
			t.Fatalf("%s: got %s; want %s", c.kind, got, c.id)
		}
		if err := Check(c.ty, body, Options{Strict: true}); err != nil {
			t.Fatalf("Check(%s %s): %v; want nil (git made it)", c.kind, c.id, err)
		}
	}
	ci, err := ParseCommit(r.Git(nil, "cat-file", "commit", merge))
	if err != nil {
		t.Fatal(err)
	}
	if ci.Tree.String() != tree || len(ci.Parents) != 2 || ci.Parents[0].String() != c1 || ci.Parents[1].String() != c2 {
		t.Fatalf("merge: got tree %s parents %v; want %s [%s %s]", ci.Tree, ci.Parents, tree, c1, c2)
	}
	if ci.Committer.When != 1700000100 || ci.Committer.Zone != "-0230" || ci.Author.Email != "author@example.com" || ci.Author.Name != "A U Thor" {
		t.Fatalf("merge idents: got author %+v committer %+v", ci.Author, ci.Committer)
	}
	ti, err := ParseTag(tagBody)
	if err != nil {
		t.Fatal(err)
	}
	if ti.Object.String() != merge || ti.Type != Commit || ti.Name != "v1" || ti.Tagger == nil || ti.Tagger.When != 1700000200 {
		t.Fatalf("tag: got %+v; want object %s type commit name v1", ti, merge)
	}
	canon := Canonical(Tag, tagBody)
	gt, gb, err := ParseCanonical(canon)
	if err != nil || gt != Tag || !bytes.Equal(gb, tagBody) {
		t.Fatalf("ParseCanonical: got %v %q %v", gt, gb, err)
	}
	// git fsck --strict agrees the repository is clean.
	if _, e, err := r.Exec(nil, "fsck", "--strict", "--no-dangling"); err != nil {
		t.Fatalf("git fsck --strict on the good objects: %v\n%s", err, e)
	}
}

func entry(mode, name string, id byte) string {
	return mode + " " + name + "\x00" + strings.Repeat(string([]byte{id}), 20)
}

const okIdent = "A <a@example.com> 1700000000 +0000"

// TestBadObjects writes each bad object into a repository with git
// hash-object --literally, and checks that git fsck --strict and Check
// refuse it with the same message ID.
func TestBadObjects(t *testing.T) {
	tree := "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	parent := "1111111111111111111111111111111111111111"
	commit := func(hdr string) string { return hdr + "\nmessage\n" }
	cases := []struct {
		name string
		ty   Type
		body string
		want string
		// git says this (default: want). Git refuses objects it cannot
		// parse before its fsck checks run, with a less specific message;
		// and git fsck --strict only warns about bad modes (an INFO-level
		// message in git), where Check refuses.
		gitSays  string
		gitWarns bool
	}{
		{"unsorted", Tree, entry("100644", "b", 1) + entry("100644", "a", 2), "treeNotSorted", "", false},
		{"dir sorts as name/", Tree, entry("40000", "a", 1) + entry("100644", "a.c", 2), "treeNotSorted", "", false},
		{"duplicate", Tree, entry("100644", "a", 1) + entry("100644", "a", 2), "duplicateEntries", "", false},
		{"duplicate file and dir", Tree, entry("100644", "a", 1) + entry("40000", "a", 2), "duplicateEntries", "", false},
		{"bad mode", Tree, entry("100666", "a", 1), "badFilemode", "", true},
		{"mode 100664", Tree, entry("100664", "a", 1), "badFilemode", "", true},
		{"zero-padded mode", Tree, entry("040000", "a", 1), "zeroPaddedFilemode", "", false},
		{"slash", Tree, entry("100644", "a/b", 1), "fullPathname", "", false},
		{"empty name", Tree, entry("100644", "", 1), "emptyName", "empty filename", false},
		{"dot", Tree, entry("40000", ".", 1), "hasDot", "", false},
		{"dotdot", Tree, entry("40000", "..", 1), "hasDotdot", "", false},
		{".git", Tree, entry("40000", ".git", 1), "hasDotgit", "", false},
		{".GIT", Tree, entry("40000", ".GIT", 1), "hasDotgit", "", false},
		{"HFS .git", Tree, entry("40000", ".gi\u200ct", 1), "hasDotgit", "", false},
		{"NTFS git~1", Tree, entry("40000", "GIT~1", 1), "hasDotgit", "", false},
		{"NTFS .git. ", Tree, entry("40000", ".git. ", 1), "hasDotgit", "", false},
		{"null sha1", Tree, entry("100644", "a", 0), "nullSha1", "", false},
		{"no tree", Commit, commit("author " + okIdent + "\ncommitter " + okIdent + "\n"), "missingTree", "could not be parsed", false},
		{"bad tree id", Commit, commit("tree 123\nauthor " + okIdent + "\ncommitter " + okIdent + "\n"), "badTreeSha1", "could not be parsed", false},
		{"bad parent", Commit, commit("tree " + tree + "\nparent zz\nauthor " + okIdent + "\ncommitter " + okIdent + "\n"), "badParentSha1", "bad parents", false},
		{"no author", Commit, commit("tree " + tree + "\nparent " + parent + "\ncommitter " + okIdent + "\n"), "missingAuthor", "", false},
		{"two authors", Commit, commit("tree " + tree + "\nauthor " + okIdent + "\nauthor " + okIdent + "\ncommitter " + okIdent + "\n"), "multipleAuthors", "", false},
		{"no committer", Commit, commit("tree " + tree + "\nauthor " + okIdent + "\n"), "missingCommitter", "", false},
		{"no email", Commit, commit("tree " + tree + "\nauthor A 1700000000 +0000\ncommitter " + okIdent + "\n"), "missingEmail", "", false},
		{"no name", Commit, commit("tree " + tree + "\nauthor <a@b> 1700000000 +0000\ncommitter " + okIdent + "\n"), "missingNameBeforeEmail", "", false},
		{"no space before email", Commit, commit("tree " + tree + "\nauthor A<a@b> 1700000000 +0000\ncommitter " + okIdent + "\n"), "missingSpaceBeforeEmail", "", false},
		{"bad email", Commit, commit("tree " + tree + "\nauthor A <a<b> 1700000000 +0000\ncommitter " + okIdent + "\n"), "badEmail", "", false},
		{"bad date", Commit, commit("tree " + tree + "\nauthor A <a@b> 17x +0000\ncommitter " + okIdent + "\n"), "badDate", "", false},
		{"zero-padded date", Commit, commit("tree " + tree + "\nauthor A <a@b> 0170 +0000\ncommitter " + okIdent + "\n"), "zeroPaddedDate", "", false},
		{"bad zone", Commit, commit("tree " + tree + "\nauthor " + okIdent + "\ncommitter A <a@b> 1700000000 0000\n"), "badTimezone", "", false},
		{"nul in header", Commit, commit("tree " + tree + "\nauthor " + okIdent + "\ncommitter " + okIdent + "\nx \x00\n"), "nulInHeader", "", false},
		{"unterminated", Commit, "tree " + tree + "\nauthor " + okIdent + "\ncommitter " + okIdent, "unterminatedHeader", "", false},
		{"tag no object", Tag, "type commit\ntag v1\ntagger " + okIdent + "\n\nm\n", "missingObject", "could not be parsed", false},
		{"tag bad type", Tag, "object " + parent + "\ntype car\ntag v1\ntagger " + okIdent + "\n\nm\n", "badType", "unknown tag type", false},
		{"tag no type", Tag, "object " + parent + "\ntag v1\ntagger " + okIdent + "\n\nm\n", "missingTypeEntry", "could not be parsed", false},
		{"tag no tag", Tag, "object " + parent + "\ntype commit\ntagger " + okIdent + "\n\nm\n", "missingTagEntry", "could not be parsed", false},
		{"tag bad tagger", Tag, "object " + parent + "\ntype commit\ntag v1\ntagger A <a@b>\n\nm\n", "missingSpaceBeforeDate", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check(c.ty, []byte(c.body), Options{Strict: true})
			var ce *CheckError
			if !errors.As(err, &ce) || ce.ID != c.want || !errors.Is(err, ErrInvalid) {
				t.Errorf("Check: got %v; want a CheckError %s", err, c.want)
			}
			r := gittest.New(t, true)
			r.Line([]byte(c.body), "hash-object", "--literally", "-w", "--stdin", "-t", c.ty.String())
			_, stderr, gerr := r.Exec(nil, "fsck", "--strict", "--no-dangling")
			says := c.gitSays
			if says == "" {
				says = c.want
			}
			if (gerr == nil) != c.gitWarns || !strings.Contains(string(stderr), says) {
				t.Errorf("git fsck --strict: got %v %q; want %q (failing: %v)", gerr, stderr, says, !c.gitWarns)
			}
		})
	}
}

// TestNonStrictAcceptsGitWarnings: without Strict, what git only warns
// about passes; names and order are refused either way.
func TestNonStrictAcceptsGitWarnings(t *testing.T) {
	for _, body := range []string{entry("100664", "a", 1), entry("040000", "a", 1), entry("100644", "a", 0)} {
		if err := Check(Tree, []byte(body), Options{}); err != nil {
			t.Errorf("Check(%q, non-strict): got %v; want nil", body, err)
		}
	}
	if err := Check(Tree, []byte(entry("40000", ".git", 1)), Options{}); err == nil {
		t.Errorf("Check(.git, non-strict): got nil; want hasDotgit")
	}
	if err := Check(Tag, []byte("object 1111111111111111111111111111111111111111\ntype commit\ntag v0\n\nold tag\n"), Options{Strict: true}); err != nil {
		t.Errorf("tag without tagger: got %v; want nil (git accepts old tags)", err)
	}
}

func TestCollisionRefused(t *testing.T) {
	for _, name := range []string{"sha-mbles-1.bin", "sha-mbles-2.bin"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "sha1-collision", name))
		if err != nil {
			t.Fatal(err)
		}
		h := NewHasher(Blob, int64(len(data)))
		h.Write(data)
		_, blobErr := h.Sum()
		_, rawErr := HashRaw(data)
		t.Logf("%s: as a blob's canonical form: %v; raw: %v", name, blobErr, rawErr)
		if !errors.Is(rawErr, ErrCollision) {
			t.Fatalf("%s: HashRaw got %v; want ErrCollision", name, rawErr)
		}
	}
}

func TestParseCanonicalRefusesBadHeaders(t *testing.T) {
	for _, in := range []string{"blob 3\x00ab", "blob 03\x00abc", "blob -1\x00", "car 1\x00a", "blob 1", "blob1\x00a"} {
		if _, _, err := ParseCanonical([]byte(in)); err == nil {
			t.Errorf("ParseCanonical(%q): got nil; want an error", in)
		}
	}
}

func FuzzParsers(f *testing.F) {
	f.Add(uint8(Tree), []byte(entry("100644", "a", 1)+entry("40000", "b", 2)))
	f.Add(uint8(Commit), []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor "+okIdent+"\ncommitter "+okIdent+"\n\nm\n"))
	f.Add(uint8(Tag), []byte("object 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ntype tree\ntag v\ntagger "+okIdent+"\n\nm\n"))
	f.Fuzz(func(t *testing.T, ty uint8, body []byte) {
		typ := Type(ty%4 + 1)
		err := Check(typ, body, Options{Strict: true})
		switch typ {
		case Tree:
			es, perr := ParseTree(body)
			if err == nil && (perr != nil || !bytes.Equal(WriteTree(es), body)) {
				t.Fatalf("checked tree does not round-trip: %v", perr)
			}
		case Commit:
			if _, perr := ParseCommit(body); err == nil && perr != nil {
				t.Fatalf("checked commit does not parse: %v", perr)
			}
		case Tag:
			if _, perr := ParseTag(body); err == nil && perr != nil {
				t.Fatalf("checked tag does not parse: %v", perr)
			}
		}
		_, _, _ = ParseCanonical(body)
	})
}

// WalkTree reports each entry as ParseTree does, and the same errors: a
// push's connectivity walk reads trees with it.
func TestWalkTree(t *testing.T) {
	body := []byte(entry("100644", "a", 1) + entry("160000", "m", 2) + entry("40000", "z", 3))
	want, err := ParseTree(body)
	if err != nil {
		t.Fatal(err)
	}
	var got []TreeEntry
	if err := WalkTree(body, func(mode uint32, name []byte, id ID) {
		got = append(got, TreeEntry{Mode: mode, Name: string(name), ID: id})
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || len(got) != len(want) {
		t.Fatalf("WalkTree gave %d entries, ParseTree %d; want 3", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("entry %d: WalkTree %+v, ParseTree %+v", i, got[i], want[i])
		}
	}
	if got[1].Mode != ModeSubmodule || got[1].ID != ID(bytes.Repeat([]byte{2}, 20)) {
		t.Fatalf("entry 1: %+v", got[1])
	}
	for name, bad := range map[string][]byte{
		"truncated id": body[:len(body)-1],
		"no mode":      []byte(" a\x00" + strings.Repeat("x", 20)),
		"mode 9":       []byte(entry("100649", "a", 1)),
	} {
		calls := 0
		if err := WalkTree(bad, func(uint32, []byte, ID) { calls++ }); err == nil {
			t.Errorf("%s: WalkTree accepted it (%d entries)", name, calls)
		}
		if _, err := ParseTree(bad); err == nil {
			t.Errorf("%s: ParseTree accepted it", name)
		}
	}
}
