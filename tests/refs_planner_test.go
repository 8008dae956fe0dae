package tests

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// assignments summarises the partition records: per node, how many
// partitions it is a member and the primary of; complete is true when every
// partition has want members, all in sync, none on a node in skip.
func (c *Cluster) assignments(t *testing.T, want int, skip ...string) (members, primaries map[string]int, complete bool) {
	t.Helper()
	parts, err := c.CP.Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	members, primaries, complete = map[string]int{}, map[string]int{}, len(parts) > 0
	for _, p := range parts {
		primaries[p.Primary]++
		for _, id := range p.Replicas {
			members[id]++
		}
		complete = complete && len(p.Replicas) == want && len(p.InSync) == want
		for _, s := range skip {
			complete = complete && !p.Has(s)
		}
	}
	return members, primaries, complete
}

func spread(counts map[string]int, nodes ...string) int {
	lo, hi := 1<<30, 0
	for _, n := range nodes {
		lo, hi = min(lo, counts[n]), max(hi, counts[n])
	}
	return hi - lo
}

// writeRefs creates one ref in each of n repositories and returns them.
func writeRefs(t *testing.T, c *Cluster, n int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := 0; i < n; i++ {
		repo := fmt.Sprintf("plan/r%d", i)
		if _, err := c.Client(0).RefTxn(ctxT(t), repo, api.RefTxn{Updates: []api.RefUpdate{{Name: "refs/heads/main", Old: api.ZeroOID, New: oidN(i)}}}, false); err != nil {
			t.Fatalf("write %s: %v", repo, err)
		}
		out[repo] = oidN(i)
	}
	return out
}

func checkRefs(t *testing.T, c *Cluster, via int, want map[string]string) {
	t.Helper()
	for repo, oid := range want {
		got, err := c.Client(via).GetRef(ctxT(t), repo, "refs/heads/main")
		if err != nil || got != oid {
			t.Fatalf("%s via n%d: %s, %v; want %s", repo, via+1, got, err, oid)
		}
	}
}

// The planner, driven by real membership changes: a node joins (it gets
// its share of members and primaries), a node drains (its partitions move
// away before it may be removed), a node is lost (its partitions are
// promoted and re-replicated). Refs stay readable throughout.
func TestPartitionPlannerAddDrainLose(t *testing.T) {
	const P = 24
	c := refsCluster(t, 3, P, nil)
	refs := writeRefs(t, c, 20)

	c.AddNode()
	all := []string{"n1", "n2", "n3", "n4"}
	Eventually(t, 60*time.Second, "n4 gets its share, all complete", func() bool {
		m, p, ok := c.assignments(t, 3)
		return ok && spread(m, all...) <= 1 && spread(p, all...) <= 1
	})
	m, p, _ := c.assignments(t, 3)
	t.Logf("after join: members %v primaries %v", m, p)
	c.waitPartitionsServing(t, P)
	checkRefs(t, c, 3, refs)

	if err := c.Client(0).NodeAction(ctxT(t), "n2", "drain", false); err != nil {
		t.Fatal(err)
	}
	rest := []string{"n1", "n3", "n4"}
	Eventually(t, 60*time.Second, "n2 holds no partition, all complete", func() bool {
		_, p, ok := c.assignments(t, 3, "n2")
		return ok && spread(p, rest...) <= 1
	})
	c.waitPartitionsServing(t, P)
	checkRefs(t, c, 0, refs)
	Eventually(t, 30*time.Second, "n2 removable", func() bool {
		return c.Client(0).NodeAction(ctxT(t), "n2", "remove", false) == nil
	})
	c.StopNode(1)

	// Lose n4: its registration disappears (here it is released at once; a
	// SIGKILL, covered by TestRefsFailover, waits for the TTL), it goes
	// DOWN, its partitions are promoted and re-replicated onto what is left.
	c.AddNode() // n5, so three nodes remain for three replicas
	c.Nodes[3].Node.Close(context.Background())
	c.Nodes[3].Node = nil
	left := []string{"n1", "n3", "n5"}
	Eventually(t, 60*time.Second, "n4's partitions moved; all complete", func() bool {
		_, p, ok := c.assignments(t, 3, "n4")
		return ok && spread(p, left...) <= 1
	})
	c.waitPartitionsServing(t, P)
	checkRefs(t, c, 4, refs)
	m, p, _ = c.assignments(t, 3)
	t.Logf("after loss: members %v primaries %v", m, p)
	if err := c.Client(0).NodeAction(ctxT(t), "n5", "remove", false); !errors.Is(err, api.ErrUnsafe) {
		t.Fatalf("removing n5, a member of partitions, was not refused: %v", err)
	}
}
