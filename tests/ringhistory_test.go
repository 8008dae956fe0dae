package tests

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/ring"
)

// Four ring changes before anything moves (repair paused): three joins,
// then an address change that moves nothing. Objects the last ring places
// on the three new nodes only still sit on their owners four rings back,
// and a quorum GET (single and batch) through an old node finds every one.
func TestReadsFindObjectsSeveralRingsBack(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.AntiEntropyInterval, cfg.AntiEntropyRate = 200*time.Millisecond, 100000
	})
	objs := putMany(t, c, 0, 150, api.All)
	Eventually(t, 20*time.Second, "n1 settled: it reads from the current owners only", func() bool {
		former, partial := c.Nodes[0].Node.ReadHistory()
		return former == 0 && !partial
	})
	if err := c.Client(0).SetRepairPaused(ctxT(t), true); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "every node sees the pause", func() bool {
		for i := range c.Nodes {
			if !status(t, c, i).Repair.Paused {
				return false
			}
		}
		return true
	})
	for range 3 {
		c.AddNode()
		c.WaitRingConverged()
	}
	before := c.Nodes[0].Node.Ring().Revision()
	c.StopNode(3) // n4 comes back on another port: an address change
	c.Nodes[3].Addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.StartNode(3)
	c.WaitRingConverged()
	r := c.Nodes[0].Node.Ring()
	if r.Revision() == before {
		t.Fatalf("the address change did not change the ring (revision %d)", before)
	}
	if former, _ := c.Nodes[0].Node.ReadHistory(); former < 4 {
		t.Fatalf("n1 keeps %d earlier rings after 4 ring changes; want at least 4", former)
	}
	onNewOnly := 0
	for oid := range objs {
		if !slices.ContainsFunc(r.Replicas([]byte(oid.String())), func(rn ring.Node) bool { return rn.ID <= "n3" }) {
			onNewOnly++
		}
	}
	if onNewOnly == 0 {
		t.Fatal("no object is placed on the new nodes only; the test proves nothing")
	}
	for oid, want := range objs {
		got, err := c.Client(0).GetBytes(ctxT(t), oid, api.Quorum)
		if err != nil || string(got) != string(want) {
			t.Fatalf("quorum GET of %s after 4 ring changes (%d objects now placed on new nodes only): %v", oid, onNewOnly, err)
		}
	}
	oids := make([]api.OID, 0, len(objs))
	for oid := range objs {
		oids = append(oids, oid)
	}
	err := c.Client(0).GetMany(ctxT(t), oids, api.Quorum, func(oid api.OID, data []byte, err error) {
		if err != nil || string(data) != string(objs[oid]) {
			t.Errorf("batch GET at quorum of %s after 4 ring changes: %v", oid, err)
		}
	})
	if err != nil {
		t.Fatalf("batch GET: %v", err)
	}
}
