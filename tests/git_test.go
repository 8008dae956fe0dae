package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/internal/pki"
)

// gitCluster is a 3-node cluster with ref partitions, as `make run` starts.
func gitCluster(t *testing.T, tune func(*datanode.Config)) *Cluster {
	return refsCluster(t, 3, 4, tune)
}

// mustClone clones url into a new directory (extra are git clone options)
// and checks it with git fsck --strict.
func mustClone(t *testing.T, url, name string, extra ...string) string {
	t.Helper()
	dir := gitWorkdir(t, name)
	mustGit(t, dir, append(append([]string{"clone", "-q"}, extra...), url, ".")...)
	mustGit(t, dir, "fsck", "--strict", "--no-progress")
	return dir
}

// Stock git against stratum: push a generated repository (branches, a
// merge, an annotated and a lightweight tag, binary files) to node 1;
// clone it from node 2 (protocol v2, mirror) and node 3 (protocol v0,
// checkout): both clean under git fsck --strict, with the same refs and
// history; push more and fetch it; the repository exists in the ref API.
func TestGitPushCloneFetch(t *testing.T) {
	c := gitCluster(t, nil)
	src := genRepo(t, 60)
	const repo = "demo/hello.git"
	mustGit(t, src, "push", "-q", gitURL(c, 0, repo, ""), "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	want := gitRefs(t, src, "refs/heads", "refs/tags")
	if n := strings.Count(want, "\n"); n != 4 {
		t.Fatalf("the source has %d refs; want main, feature, v1 and light:\n%s", n, want)
	}

	mirror := mustClone(t, gitURL(c, 1, repo, ""), "mirror", "--mirror")
	if got := gitRefs(t, mirror, "refs/heads", "refs/tags"); got != want {
		t.Fatalf("refs cloned from n2 (v2):\n%s\nwant those pushed:\n%s", got, want)
	}
	if got, want := mustGit(t, mirror, "log", "--all", "--format=%H %P %s"), mustGit(t, src, "log", "--all", "--format=%H %P %s"); got != want {
		t.Fatalf("history cloned from n2 differs from the source's")
	}
	v0 := mustClone(t, gitURL(c, 2, repo, ""), "v0", "-c", "protocol.version=0")
	if got, want := mustGit(t, v0, "rev-parse", "HEAD", "origin/feature", "v1^{commit}"), mustGit(t, src, "rev-parse", "main", "feature", "v1^{commit}"); got != want {
		t.Fatalf("a v0 clone from n3 checked out / fetched\n%s; want\n%s", got, want)
	}
	if _, errOut, err := gitRun(t, v0, nil, "diff", "--quiet", "HEAD"); err != nil {
		t.Fatalf("the v0 clone's work tree differs from HEAD: %v %s", err, errOut)
	}

	next := addCommit(t, src, "later.txt", "pushed after the clones\n")
	mustGit(t, src, "push", "-q", gitURL(c, 2, repo, ""), "main")
	mustGit(t, mirror, "fetch", "-q", "origin")
	mustGit(t, mirror, "fsck", "--strict", "--no-progress")
	if got := strings.TrimSpace(mustGit(t, mirror, "rev-parse", "main")); got != next {
		t.Fatalf("main after a fetch from n2: %s; want the new commit %s", got, next)
	}
	mustGit(t, v0, "-c", "protocol.version=0", "pull", "-q", "--ff-only")
	if got := strings.TrimSpace(mustGit(t, v0, "rev-parse", "HEAD")); got != next {
		t.Fatalf("HEAD after a v0 pull from n3: %s; want %s", got, next)
	}
	ref, err := c.Client(0).GetRef(ctxT(t), repo, "refs/heads/main")
	if err != nil || ref != next {
		t.Fatalf("refs/heads/main in the ref API: %q, %v; want %s", ref, err, next)
	}
	// ls-remote through each node agrees.
	for i := range c.Nodes {
		if out := mustGit(t, src, "ls-remote", gitURL(c, i, repo, ""), "refs/heads/main"); !strings.HasPrefix(out, next) {
			t.Fatalf("ls-remote through %s: %q; want main at %s", c.Nodes[i].ID, out, next)
		}
	}
}

// Two pushes to one branch, both holding the same old value when they
// send their packs (a pre-push hook holds each until both have read the
// advertisement): exactly one wins, the loser is refused cleanly and the
// branch is the winner's commit.
func TestGitConcurrentPushesOneWins(t *testing.T) {
	c := gitCluster(t, nil)
	src := genRepo(t, 5)
	const repo = "demo/race.git"
	mustGit(t, src, "push", "-q", gitURL(c, 0, repo, ""), "main")
	barrier := t.TempDir()
	var dirs [2]string
	var tips [2]string
	for i := range dirs {
		dirs[i] = mustClone(t, gitURL(c, i, repo, ""), "racer")
		// pre-push runs after the advertisement is read, before the pack
		// is sent; each waits (at most 30 s) until both got there
		hook := "#!/bin/sh\ntouch " + filepath.Join(barrier, string(rune('a'+i))) +
			"\nfor i in $(seq 300); do [ -e " + filepath.Join(barrier, "a") + " ] && [ -e " + filepath.Join(barrier, "b") + " ] && exit 0; sleep 0.1; done\nexit 1\n"
		if err := os.WriteFile(filepath.Join(dirs[i], ".git", "hooks", "pre-push"), []byte(hook), 0o755); err != nil {
			t.Fatal(err)
		}
		tips[i] = addCommit(t, dirs[i], "racer.txt", "racer "+string(rune('a'+i))+"\n")
	}
	var wg sync.WaitGroup
	errs, stderr := make([]error, 2), make([]string, 2)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, stderr[i], errs[i] = gitRun(t, dirs[i], nil, "push", gitURL(c, i, repo, ""), "main")
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two concurrent pushes: %v, %v; want exactly one to succeed\n%s\n%s", errs[0], errs[1], stderr[0], stderr[1])
	}
	winner, loser := 0, 1
	if errs[0] != nil {
		winner, loser = 1, 0
	}
	if !strings.Contains(stderr[loser], "rejected") && !strings.Contains(stderr[loser], "fetch first") {
		t.Fatalf("the losing push printed %q; want git's rejection", stderr[loser])
	}
	if ref, err := c.Client(2).GetRef(ctxT(t), repo, "refs/heads/main"); err != nil || ref != tips[winner] {
		t.Fatalf("main after the race: %q, %v; want the winner's %s", ref, err, tips[winner])
	}
}

// Stock git with auth on: a read token (the basic-auth password, as a
// credential helper would give it) clones, but its push is refused and git
// prints why; a read and write token pushes; no token gets 401 and git
// fails at once rather than prompting. A push to a repository that does
// not exist creates it.
func TestGitAuth(t *testing.T) {
	c := refsClusterWith(t, 3, 4, func(cfg *datanode.Config) { cfg.Auth = true }, func(c *Cluster) {
		_, c.Token = mustToken(t, c, "harness", api.ScopeAdmin)
	})
	_, readTok := mustToken(t, c, "reader", api.ScopeRead)
	_, pushTok := mustToken(t, c, "ci", api.ScopeRead, api.ScopeWrite)
	src := genRepo(t, 10)
	const repo = "team/new-repo.git"
	if _, err := c.Client(0).GetRef(ctxT(t), repo, "refs/heads/main"); err == nil {
		t.Fatal("the repository exists before the first push")
	}
	_, errOut, err := gitRun(t, src, nil, "push", gitURL(c, 0, repo, ""), "main")
	if err == nil || !strings.Contains(errOut, "terminal prompts disabled") {
		t.Fatalf("a push without a token: %v\n%s\nwant git to fail asking for credentials (a 401)", err, errOut)
	}
	_, errOut, err = gitRun(t, src, nil, "push", gitURL(c, 0, repo, readTok), "main")
	if err == nil || !strings.Contains(errOut, "lacks the write scope") || !strings.Contains(errOut, "403") {
		t.Fatalf("a push with a read token: %v\n%s\nwant a 403 whose reason git prints", err, errOut)
	}
	t.Logf("git's answer to a push with a read token:\n%s", errOut)
	mustGit(t, src, "push", "-q", gitURL(c, 1, repo, pushTok), "main")
	if ref, err := c.Client(0).GetRef(ctxT(t), repo, "refs/heads/main"); err != nil || ref != strings.TrimSpace(mustGit(t, src, "rev-parse", "main")) {
		t.Fatalf("main of the repository the push created: %q, %v", ref, err)
	}
	clone := mustClone(t, gitURL(c, 2, repo, readTok), "reader")
	if got, want := mustGit(t, clone, "rev-parse", "HEAD"), mustGit(t, src, "rev-parse", "main"); got != want {
		t.Fatalf("a clone with the read token: HEAD %s; want %s", got, want)
	}
	if _, errOut, err := gitRun(t, clone, nil, "fetch", gitURL(c, 2, repo, "")); err == nil || !strings.Contains(errOut, "terminal prompts disabled") {
		t.Fatalf("a fetch without a token: %v\n%s\nwant git to fail asking for credentials", err, errOut)
	}
}

// With one node stopped, pushes and clones through the others still work:
// every object and ref call is at quorum.
func TestGitWithANodeStopped(t *testing.T) {
	c := gitCluster(t, nil)
	src := genRepo(t, 20)
	const repo = "demo/quorum.git"
	mustGit(t, src, "push", "-q", gitURL(c, 0, repo, ""), "main", "feature")
	c.StopNode(2)
	next := addCommit(t, src, "while-down.txt", "pushed with n3 stopped\n")
	mustGit(t, src, "push", "-q", gitURL(c, 1, repo, ""), "main")
	for i := 0; i < 2; i++ {
		dir := mustClone(t, gitURL(c, i, repo, ""), "clone")
		if got := strings.TrimSpace(mustGit(t, dir, "rev-parse", "HEAD")); got != next {
			t.Fatalf("a clone through %s with n3 stopped: HEAD %s; want %s", c.Nodes[i].ID, got, next)
		}
	}
}

// `stratum dev` (what `make run` starts) prints one clone URL; the
// README's commands work against it: push a repository to it, clone it
// back through another node, fetch a later push.
func TestDevPrintsACloneURL(t *testing.T) {
	bin := buildBinary(t)
	base := freePorts(t, 3)
	p := startDev(t, bin, "--dir", t.TempDir(), "--base-port", fmt.Sprint(base), "--nodes", "3",
		"--etcd-client-port", fmt.Sprint(freePort(t)), "--etcd-peer-port", fmt.Sprint(freePort(t)))
	var url string
	Eventually(t, 60*time.Second, "the banner's clone URL", func() bool {
		m := regexp.MustCompile(`(?m)^git: git clone (\S+)`).FindStringSubmatch(p.stdout.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	if want := fmt.Sprintf("http://127.0.0.1:%d/git/demo/hello.git", base); url != want {
		t.Fatalf("stratum dev prints clone URL %q; want %q", url, want)
	}
	src := genRepo(t, 10)
	mustGit(t, src, "push", "-q", url, "main")
	clone := mustClone(t, strings.Replace(url, fmt.Sprint(base), fmt.Sprint(base+1), 1), "hello")
	next := addCommit(t, src, "more.txt", "more\n")
	mustGit(t, src, "push", "-q", url, "main")
	mustGit(t, clone, "pull", "-q", "--ff-only")
	if got := strings.TrimSpace(mustGit(t, clone, "rev-parse", "HEAD")); got != next {
		t.Fatalf("the clone after a pull: HEAD %s; want %s", got, next)
	}
}

// Over TLS with auth on, git works with the cluster's CA, and a node's
// calls to itself for a Git request carry the caller's token, never the
// node's certificate (which would allow anything): a write-only token may
// open a push, but the push's reads (refs, which objects exist) are
// refused, so the push fails.
func TestGitOverTLSActsAsTheCaller(t *testing.T) {
	ca, err := pki.NewCA("stratum git test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	c := mustStartClusterWith(t, 3, func(cfg *datanode.Config) {
		cert, key, err := ca.IssueNode(cfg.ID, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS, _ = pki.ServerConfig(cert, key, ca.CertPEM)
		cfg.PeerTLS, _ = pki.ClientConfig(cert, key, ca.CertPEM)
		cfg.Auth, cfg.ReadyWaitsForPartitions = true, true
		cfg.RefCheckInterval = 200 * time.Millisecond
	}, func(c *Cluster) { _, c.Token = mustToken(t, c, "harness", api.ScopeAdmin) })
	c.planner(t, "planner", 4, 3)
	for _, tn := range c.Nodes { // the harness's client speaks plain HTTP: ask the nodes
		Eventually(t, 30*time.Second, tn.ID+" serves its partitions", func() bool { return tn.Node.Readiness() == nil })
	}
	_, pushTok := mustToken(t, c, "ci", api.ScopeRead, api.ScopeWrite)
	_, writeOnly := mustToken(t, c, "writer", api.ScopeWrite)
	url := func(i int, tok string) string {
		return "https://git:" + tok + "@" + c.Nodes[i].Addr + "/git/demo/tls.git"
	}
	src := genRepo(t, 10)
	mustGit(t, src, "config", "http.sslCAInfo", caFile)
	_, errOut, err := gitRun(t, src, nil, "push", url(0, writeOnly), "main")
	if err == nil || !strings.Contains(errOut, "lacks the read scope") {
		t.Fatalf("a push with a write-only token over TLS: %v\n%s\nwant its reads refused (the node called itself as the caller)", err, errOut)
	}
	mustGit(t, src, "push", "-q", url(0, pushTok), "main")
	clone := mustClone(t, url(1, pushTok), "tls", "-c", "http.sslCAInfo="+caFile)
	if got, want := mustGit(t, clone, "rev-parse", "HEAD"), mustGit(t, src, "rev-parse", "main"); got != want {
		t.Fatalf("a clone over TLS: HEAD %s; want %s", got, want)
	}
}
