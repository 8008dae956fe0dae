package datanode

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
	v, err := buildView(r, map[string]api.Member{"c": {ID: "c", State: api.StateDraining}, "d": {ID: "d", State: api.StateDown}})
	if err != nil {
		t.Fatal(err)
	}
	if v.ring.Len() != 4 || v.write.Len() != 3 || v.write.Revision() != 9 {
		t.Fatalf("ring %d nodes, write ring %d nodes rev %d; want 4, 3, 9", v.ring.Len(), v.write.Len(), v.write.Revision())
	}
	if _, ok := v.write.Node("c"); ok {
		t.Fatal("the draining node is in the write ring")
	}
	if v.state("d") != api.StateDown || v.state("a") != api.StateActive || v.state("x") != api.StateActive {
		t.Fatalf("states: d=%s a=%s x=%s; want DOWN, ACTIVE, ACTIVE (no record)", v.state("d"), v.state("a"), v.state("x"))
	}
	same, _ := buildView(r, map[string]api.Member{"d": {ID: "d", State: api.StateDown}})
	if same.write != same.ring {
		t.Fatal("with no draining node the write ring should be the ring itself")
	}
}
