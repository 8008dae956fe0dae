package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
)

// readyRepos returns one repository name per partition of count.
func readyRepos(count int) []string {
	repos := make([]string, count)
	for i, found := 0, 0; found < count; i++ {
		repo := fmt.Sprintf("ready/r%d", i)
		if p := api.PartitionOf(repo, count); repos[p] == "" {
			repos[p] = repo
			found++
		}
	}
	return repos
}

// checkServesRefs checks, at once and without retrying, what readiness
// promises: every node knows every partition and serves as primary each
// one that names it, and a ref transaction on every partition, sent through
// every node in turn, succeeds.
func checkServesRefs(t *testing.T, urls []string, partitions int) {
	t.Helper()
	ctx := ctxT(t)
	for _, u := range urls {
		cl, _ := client.New(client.Config{Endpoint: u, Timeout: 10 * time.Second})
		rep, err := cl.Partitions(ctx)
		if err != nil {
			t.Fatalf("%s /v1/partitions: %v", u, err)
		}
		if rep.Config == nil || len(rep.Partitions) != partitions {
			t.Errorf("%s right after readiness: config %v, %d partition records; want the config and %d", u, rep.Config, len(rep.Partitions), partitions)
		}
		for _, p := range rep.Partitions {
			if p.Primary == rep.Node && !p.Serving {
				t.Errorf("%s right after readiness: partition %d names %s primary but it does not serve it", u, p.ID, rep.Node)
			}
		}
	}
	for i, repo := range readyRepos(partitions) {
		cl, _ := client.New(client.Config{Endpoint: urls[i%len(urls)], Timeout: 10 * time.Second})
		_, err := cl.RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: "refs/heads/main", Old: api.ZeroOID, New: strings.Repeat("a", 40)}}}, false)
		if err != nil {
			t.Errorf("ref transaction on %s (partition %d) through %s right after readiness: %v; want success", repo, i, urls[i%len(urls)], err)
		}
	}
}

// TestReadyMeansRefsServe: right after /readyz answers 200 on every node of
// a fresh cluster, ref partitions are assigned and served (readiness).
func TestReadyMeansRefsServe(t *testing.T) {
	const partitions = 8
	c := launchProcCluster(t, 3, partitions)
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL())
	}
	waitReady(t, urls...)
	checkServesRefs(t, urls, partitions)
}

// TestDevReadyMeansRefsServe: right after `stratum dev` prints ready, ref
// transactions succeed through every node.
func TestDevReadyMeansRefsServe(t *testing.T) {
	bin := buildBinary(t)
	base := freePorts(t, 3)
	dev := startDev(t, bin, "--dir", t.TempDir(), "--base-port", fmt.Sprint(base), "--nodes", "3",
		"--etcd-client-port", fmt.Sprint(freePort(t)), "--etcd-peer-port", fmt.Sprint(freePort(t)))
	Eventually(t, 90*time.Second, "stratum dev prints ready", func() bool { return strings.Contains(dev.stdout.String(), "\nready;") })
	var urls []string
	for i := 0; i < 3; i++ {
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", base+i))
	}
	checkServesRefs(t, urls, api.DefaultPartitionCount)
}
