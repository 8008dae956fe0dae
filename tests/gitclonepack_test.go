package tests

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/clonepack"
)

// A push that creates a repository keeps its pack (datanode/git/clonepack)
// at quorum: with a node stopped, a clone through another node is still
// that pack. Deleting the kept pack through the object API leaves the
// repository readable: the next clone is generated from the objects. Every
// clone has the pushed refs and passes git fsck --strict.
func TestGitKeptPackWithANodeStoppedThenDeleted(t *testing.T) {
	c := gitCluster(t, nil)
	src := genRepo(t, 200)
	if n := strings.Count(mustGit(t, src, "rev-list", "--objects", "--all"), "\n"); n < 1000 {
		t.Fatalf("the generated repository has %d objects; a pack is kept from 1,000", n)
	}
	const repo = "demo/kept.git"
	mustGit(t, src, "push", "-q", gitURL(c, 0, repo, ""), "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	want := gitRefs(t, src, "refs/heads", "refs/tags")
	id, err := c.Client(1).GetRef(ctxT(t), repo, clonepack.Ref)
	if err != nil {
		t.Fatalf("%s after the first push: %v", clonepack.Ref, err)
	}
	data, err := c.Client(1).GetBytes(ctxT(t), api.MustParseOID(id), api.Quorum)
	if err != nil {
		t.Fatalf("the manifest %s: %v", id, err)
	}
	var m clonepack.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("the manifest %s: %v", id, err)
	}

	clone := func(node int, name string) bool {
		t.Helper()
		dir := gitWorkdir(t, name)
		_, errOut, err := gitRun(t, dir, nil, "clone", "--progress", "--mirror", gitURL(c, node, repo, ""), ".")
		if err != nil {
			t.Fatalf("clone %s through %s: %v\n%.2000s", name, c.Nodes[node].ID, err, errOut)
		}
		mustGit(t, dir, "fsck", "--strict", "--no-progress")
		if got := gitRefs(t, dir, "refs/heads", "refs/tags"); got != want {
			t.Fatalf("clone %s: refs\n%s\nwant\n%s", name, got, want)
		}
		return strings.Contains(errOut, "Reusing the pushed pack")
	}
	c.StopNode(2)
	if !clone(1, "n3-stopped") {
		t.Fatal("a full clone with n3 stopped was not the kept pack")
	}
	if _, err := c.Client(0).Delete(ctxT(t), api.MustParseOID(m.Pack), api.Quorum); err != nil {
		t.Fatalf("delete the kept pack %s: %v", m.Pack, err)
	}
	if clone(0, "pack-deleted") {
		t.Fatal("a clone after the kept pack was deleted was sent it")
	}
}
