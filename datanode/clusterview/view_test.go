package clusterview

import (
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

func TestBuildViewLeavesDrainingNodesOutOfWrites(t *testing.T) {
	nodes := []ring.Node{{ID: "a", Addr: "a:1"}, {ID: "b", Addr: "b:1"}, {ID: "c", Addr: "c:1"}, {ID: "d", Addr: "d:1"}}
	r, err := ring.New(9, nodes, ring.Config{Replicas: 3, VNodes: 64})
	if err != nil {
		t.Fatal(err)
	}
	v, err := Build(r, map[string]api.Member{"c": {ID: "c", State: api.StateDraining}, "d": {ID: "d", State: api.StateDown}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Ring.Len() != 4 || v.Write.Len() != 3 || v.Write.Revision() != 9 {
		t.Fatalf("ring %d nodes, write ring %d nodes rev %d; want 4, 3, 9", v.Ring.Len(), v.Write.Len(), v.Write.Revision())
	}
	if _, ok := v.Write.Node("c"); ok {
		t.Fatal("the draining node is in the write ring")
	}
	if v.State("d") != api.StateDown || v.State("a") != api.StateActive || v.State("x") != api.StateActive {
		t.Fatalf("states: d=%s a=%s x=%s; want DOWN, ACTIVE, ACTIVE (no record)", v.State("d"), v.State("a"), v.State("x"))
	}
	same, _ := Build(r, map[string]api.Member{"d": {ID: "d", State: api.StateDown}})
	if same.Write != same.Ring {
		t.Fatal("with no draining node the write ring should be the ring itself")
	}
}
