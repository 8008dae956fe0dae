package datanode

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/ring"
)

// A view keeps every earlier ring as a read source up to maxFormerRings;
// past that it drops the oldest and reads ask every ring node; settle
// empties the history only at the current revision.
func TestViewKeepsEarlierRingsAsReadSources(t *testing.T) {
	cfg := ring.Config{Replicas: 3, VNodes: 64}
	nodes := []ring.Node{{ID: "a", Addr: "a:1"}, {ID: "b", Addr: "b:1"}, {ID: "c", Addr: "c:1"}}
	mustRing := func(rev int64, ns []ring.Node) *ring.Ring {
		t.Helper()
		r, err := ring.New(rev, ns, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	n := &Node{logger: slog.New(slog.DiscardHandler)}
	n.view.Store(&clusterview.View{})
	n.swapView(mustRing(1, nodes), nil)
	if v := n.view.Load(); !v.Partial || len(v.Former) != 0 {
		t.Fatalf("first ring of a new process: partial %v, %d former; want partial, none", v.Partial, len(v.Former))
	}
	n.settle(1)
	if v := n.view.Load(); v.Partial {
		t.Fatal("settle at the current revision left the view partial")
	}
	// Three joins, then an address change that moves nothing.
	key := []byte("an object placed on a, b and c only")
	for i, id := range []string{"d", "e", "f"} {
		nodes = append(nodes, ring.Node{ID: id, Addr: id + ":1"})
		n.swapView(mustRing(int64(2+i), nodes), nil)
	}
	moved := slices.Clone(nodes)
	moved[3].Addr = "d:2"
	n.swapView(mustRing(5, moved), nil)
	n.settle(4) // not the current revision: nothing dropped
	v := n.view.Load()
	if len(v.Former) != 4 || v.Partial {
		t.Fatalf("after 4 ring changes: %d former rings, partial %v; want 4, false", len(v.Former), v.Partial)
	}
	current, former := v.ReadSet(key)
	asked := map[string]string{}
	for _, rn := range append(current, former...) {
		asked[rn.ID] = rn.Addr
	}
	for _, rn := range mustRing(1, nodes[:3]).Replicas(key) {
		if _, ok := asked[rn.ID]; !ok {
			t.Fatalf("read set %v lacks %s, an owner four rings back", asked, rn.ID)
		}
	}
	if addr, ok := asked["d"]; ok && addr != "d:2" {
		t.Fatalf("d is asked at %s; want its current address d:2", addr)
	}
	// Past the bound: the oldest ring goes and reads ask every node.
	for i := range clusterview.MaxFormerRings {
		n.swapView(mustRing(int64(6+i), append(slices.Clone(moved), ring.Node{ID: fmt.Sprintf("x%d", i), Addr: "x:1"})), nil)
	}
	v = n.view.Load()
	if len(v.Former) != clusterview.MaxFormerRings || !v.Partial {
		t.Fatalf("after %d more ring changes: %d former rings, partial %v; want %d, true", clusterview.MaxFormerRings, len(v.Former), v.Partial, clusterview.MaxFormerRings)
	}
	current, former = v.ReadSet(key)
	if got, want := len(current)+len(former), v.Ring.Len(); got != want {
		t.Fatalf("a partial view's read set has %d nodes; want every ring node (%d)", got, want)
	}
	n.settle(v.Ring.Revision())
	if v := n.view.Load(); len(v.Former) != 0 || v.Partial {
		t.Fatalf("after settle: %d former, partial %v; want none", len(v.Former), v.Partial)
	}
}
