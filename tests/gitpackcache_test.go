package tests

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stratum-store/stratum/datanode"
)

// Stock git clones through one node, with the pack cache on (the default):
// the second clone of the same tips is the cached pack (a hit) and is the
// same repository; four concurrent clones through another node write the
// pack once and are served it three times; a push makes new tips and so a
// new pack.
func TestGitClonesFromThePackCache(t *testing.T) {
	c := gitCluster(t, nil)
	src := genRepo(t, 40)
	const repo = "demo/cached.git"
	mustGit(t, src, "push", "-q", gitURL(c, 0, repo, ""), "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	want := gitRefs(t, src, "refs/heads", "refs/tags")
	count := func(i int, wantHits, wantMisses float64) {
		t.Helper()
		hits := metric(t, c, i, "stratum_git_pack_cache_hits_total")
		misses := metric(t, c, i, "stratum_git_pack_cache_misses_total")
		if hits != wantHits || misses != wantMisses {
			t.Fatalf("pack cache of %s: %v hits, %v misses; want %v, %v", c.Nodes[i].ID, hits, misses, wantHits, wantMisses)
		}
	}
	for k := range 2 {
		m := mustClone(t, gitURL(c, 1, repo, ""), "mirror", "--mirror")
		if got := gitRefs(t, m, "refs/heads", "refs/tags"); got != want {
			t.Fatalf("clone %d through n2: refs\n%s\nwant\n%s", k+1, got, want)
		}
	}
	count(1, 1, 1)

	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for k := range 4 {
		dir := gitWorkdir(t, fmt.Sprint("concurrent", k))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, errOut, err := gitRun(t, dir, nil, "clone", "-q", "--mirror", gitURL(c, 2, repo, ""), "."); err != nil {
				errs <- errOut
				return
			}
			// not gitRefs: a goroutine other than the test's must not stop it
			got, errOut, err := gitRun(t, dir, nil, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags")
			if err != nil || got != want {
				errs <- "refs differ:\n" + got + errOut
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("a concurrent clone through n3 failed: %s", e)
	}
	count(2, 3, 1)

	addCommit(t, src, "later.txt", "a new tip\n")
	mustGit(t, src, "push", "-q", gitURL(c, 0, repo, ""), "main")
	m := mustClone(t, gitURL(c, 1, repo, ""), "after-push", "--mirror")
	if got, want := gitRefs(t, m, "refs/heads"), gitRefs(t, src, "refs/heads"); got != want {
		t.Fatalf("clone after the push: refs\n%s\nwant\n%s", got, want)
	}
	count(1, 1, 2)
}

// A push writes its objects in process (the node's object protocol), and
// a fetch reads them in process and only what that cannot answer through
// the API. On five nodes with three replicas each node owns about three
// fifths of the objects: the push stores the others on their owners, a
// clone through a node reads the others from their owners, over both
// protocols, and one node stopped changes nothing (quorum reads). The
// pack cache is off, so every clone walks.
func TestGitReadsAndWritesThroughTheObjectProtocol(t *testing.T) {
	c := refsCluster(t, 5, 4, func(cfg *datanode.Config) { cfg.GitPackCache = 0 })
	src := genRepo(t, 40)
	const repo = "demo/spread.git"
	mustGit(t, src, "push", "-q", gitURL(c, 0, repo, ""), "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	batchPuts := metric(t, c, 0, `stratum_requests_total\{method="POST",route="/v1/objects:put",status="200"\}`)
	replicaBatches := 0.0
	for i := range c.Nodes {
		replicaBatches += max(0, metric(t, c, i, `stratum_requests_total\{method="POST",route="/internal/v1/replica-batch",status="200"\}`))
	}
	if batchPuts > 0 || replicaBatches == 0 {
		t.Fatalf("the push made %v batch PUTs over HTTP to n1 and its replicas took %v replica batches; want none and some (writes in process, replicated)", batchPuts, replicaBatches)
	}
	want := gitRefs(t, src, "refs/heads", "refs/tags")
	clone := func(i int, proto string) {
		t.Helper()
		m := mustClone(t, gitURL(c, i, repo, ""), "spread", "--mirror", "-c", "protocol.version="+proto)
		if got := gitRefs(t, m, "refs/heads", "refs/tags"); got != want {
			t.Fatalf("clone through %s (v%s): refs\n%s\nwant\n%s", c.Nodes[i].ID, proto, got, want)
		}
	}
	batchGets := func(i int) float64 {
		return max(0, metric(t, c, i, `stratum_requests_total\{method="POST",route="/v1/objects:get",status="200"\}`))
	}
	clone(4, "2")
	clone(2, "0")
	for _, i := range []int{4, 2} {
		if n := batchGets(i); n != 0 {
			t.Fatalf("%s served %v batch GETs over HTTP during a clone through it; want every read in process", c.Nodes[i].ID, n)
		}
	}
	c.StopNode(1)
	clone(3, "2")
}
