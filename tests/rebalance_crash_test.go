package tests

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// A fourth node process joins a 3-node cluster of processes holding 2,000
// objects and is killed with SIGKILL while anti-entropy fills it; an old
// owner is killed too while the move goes on. Both restart, and the move
// resumes and finishes: every node ends holding exactly the copies the ring
// places on it (the old owners shed theirs once the new owner confirmed),
// and every object reads back byte for byte.
func TestRebalanceResumesAfterKill9(t *testing.T) {
	flags := []string{"--anti-entropy-interval", "300ms", "--anti-entropy-rate", "150"}
	c := startProcCluster(t, 3, 8, flags...)
	cl := c.client(c.Nodes[0])
	objs := map[api.OID][]byte{}
	for i := range 2000 {
		data := []byte(fmt.Sprintf("rebalance crash object %d", i))
		rec, err := cl.PutBytes(ctxT(t), data, api.SHA256, api.All)
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		objs[api.MustParseOID(rec.OID)] = data
	}
	n4 := c.addNode(flags...)
	waitReady(t, n4.URL())
	objects := func(n *procNode) int64 {
		st, err := c.client(n).Status(ctxT(t))
		if err != nil {
			return -1
		}
		return st.Objects
	}
	Eventually(t, 60*time.Second, "n4 partly filled", func() bool { return objects(n4) >= 100 })
	kill9(t, n4)
	got := objects(c.Nodes[0])
	kill9(t, c.Nodes[0])
	t.Logf("killed n4 while it was being filled, and n1 holding %d copies", got)
	c.start(n4)
	c.start(c.Nodes[0])
	waitReady(t, n4.URL())
	waitReady(t, c.Nodes[0].URL())
	r, err := c.CP.LoadRing(ctxT(t))
	if err != nil || r.Len() != 4 {
		t.Fatalf("ring: %v, %v; want 4 nodes", r, err)
	}
	want := map[string]int64{}
	for oid := range objs {
		for _, rn := range r.Replicas([]byte(oid.String())) {
			want[rn.ID]++
		}
	}
	for _, n := range c.Nodes {
		Eventually(t, 90*time.Second, fmt.Sprintf("%s holds exactly its %d copies", n.ID, want[n.ID]), func() bool {
			return objects(n) == want[n.ID]
		})
	}
	t.Logf("after the kills every node holds exactly its placement: %v", want)
	for oid, data := range objs {
		got, err := cl.GetBytes(ctxT(t), oid, api.Quorum)
		if err != nil || string(got) != string(data) {
			t.Fatalf("%s after the interrupted rebalance: %v", oid, err)
		}
	}
}

// kill9 kills a node process with SIGKILL and reaps it.
func kill9(t *testing.T, n *procNode) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	n.cmd.Wait()
}
