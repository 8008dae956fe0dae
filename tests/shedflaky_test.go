package tests

import (
	"slices"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/ring"
)

// One unreachable peer that is not DOWN (no detector runs here) fails
// every anti-entropy round's sync with it. It must not stop the move of
// objects it has nothing to do with: after a join, the old owners of
// objects whose new owners are all reachable still shed their copies.
func TestUnreachablePeerDoesNotStopShedding(t *testing.T) {
	c := MustStartCluster(t, 4, func(cfg *datanode.Config) {
		cfg.AntiEntropyInterval, cfg.AntiEntropyRate = 200*time.Millisecond, 100000
	})
	objs := putMany(t, c, 0, 120, api.All)
	c.StopNode(3) // n4: in the ring, not DOWN, unreachable
	c.AddNode()   // n5
	c.WaitRingConverged()
	r := c.Nodes[0].Node.Ring()
	var moved []api.OID // placed on n5 and not on n4 now
	for oid := range objs {
		owners := r.Replicas([]byte(oid.String()))
		isNode := func(id string) func(ring.Node) bool { return func(rn ring.Node) bool { return rn.ID == id } }
		if slices.ContainsFunc(owners, isNode("n5")) && !slices.ContainsFunc(owners, isNode("n4")) {
			moved = append(moved, oid)
		}
	}
	if len(moved) == 0 {
		t.Fatal("no object moved to n5 among reachable owners; the test proves nothing")
	}
	live := []int{0, 1, 2, 4}
	Eventually(t, 60*time.Second, "the moved objects are on exactly their three owners", func() bool {
		for _, oid := range moved {
			holders := 0
			for _, i := range live {
				if local(t, c, i, oid) == "copy" {
					holders++
				}
			}
			if holders != 3 {
				return false
			}
		}
		return true
	})
}
