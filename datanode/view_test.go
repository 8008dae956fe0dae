package datanode

import (
	"fmt"
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

// TestAntiEntropyCopiesOnlyToWriteOwners: a draining node is never sent a
// copy (nor pulls one) by anti-entropy, or its drain would never finish;
// the owners under the write ring are.
func TestAntiEntropyCopiesOnlyToWriteOwners(t *testing.T) {
	nodes := []ring.Node{{ID: "a", Addr: "a:1"}, {ID: "b", Addr: "b:1"}, {ID: "c", Addr: "c:1"}, {ID: "d", Addr: "d:1"}}
	r, err := ring.New(9, nodes, ring.Config{Replicas: 3, VNodes: 64})
	if err != nil {
		t.Fatal(err)
	}
	v, err := buildView(r, map[string]api.Member{"c": {ID: "c", State: api.StateDraining}})
	if err != nil {
		t.Fatal(err)
	}
	var entries []api.AEEntry
	onC := 0
	for i := 0; i < 200; i++ {
		oid := api.MustParseOID(fmt.Sprintf("%064x", i*7919+1))
		entries = append(entries, api.AEEntry{OID: oid.String()})
		if r.Owns("c", []byte(oid.String())) {
			onC++
		}
	}
	if onC == 0 {
		t.Fatal("no entry placed on c by the ring: the test proves nothing")
	}
	if got := forWriteOwner(v, entries, "c"); len(got) != 0 {
		t.Fatalf("forWriteOwner(draining c) kept %d of %d entries the ring places on c; want 0", len(got), onC)
	}
	for _, id := range []string{"a", "b", "d"} {
		got := forWriteOwner(v, entries, id)
		want := 0
		for _, e := range entries {
			if v.write.Owns(id, []byte(e.OID)) {
				want++
			}
		}
		if len(got) != want || want == 0 {
			t.Fatalf("forWriteOwner(%s) kept %d; want the %d entries the write ring places there", id, len(got), want)
		}
		for _, e := range got {
			if !v.write.Owns(id, []byte(e.OID)) {
				t.Fatalf("forWriteOwner(%s) kept %s, which the write ring places elsewhere", id, e.OID)
			}
		}
	}
}
