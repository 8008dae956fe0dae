package objects

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/ring"
)

// formerPlaces names, for a delete, the nodes that may hold a copy though
// the write placement leaves them out: a draining owner and the owners
// under earlier rings still in the ring; never a write target, a DOWN
// node or a node that left the ring.
func TestFormerPlacesOfADelete(t *testing.T) {
	cfg := ring.Config{Replicas: 3, VNodes: 64}
	nodes := []ring.Node{{ID: "a", Addr: "a:1"}, {ID: "b", Addr: "b:1"}, {ID: "c", Addr: "c:1"}, {ID: "d", Addr: "d:1"}}
	old, err := ring.New(1, append([]ring.Node{{ID: "gone", Addr: "g:1"}}, nodes[:3]...), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := ring.New(2, append(nodes[:3:3], ring.Node{ID: "d", Addr: "d:2"}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := func(members map[string]api.Member, former []*ring.Ring, key string, want func(targets []ring.Node) []string) {
		t.Helper()
		v, err := clusterview.Build(cur, members)
		if err != nil {
			t.Fatal(err)
		}
		v.Former = former
		targets := v.Write.Replicas([]byte(key))
		var got []string
		for _, rn := range formerPlaces(v, []byte(key), targets, nil) {
			got = append(got, rn.ID+"@"+rn.Addr)
		}
		slices.Sort(got)
		w := want(targets)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Fatalf("key %s, write targets %v: former places %v; want %v", key, targets, got, w)
		}
	}
	for k := range 50 {
		key := fmt.Sprintf("%040x", k*7919)
		// no ring change, nobody draining: nowhere else
		f(nil, nil, key, func([]ring.Node) []string { return nil })
		// d draining: d, when the ring places the key on it
		f(map[string]api.Member{"d": {ID: "d", State: api.StateDraining}}, nil, key, func([]ring.Node) []string {
			if cur.Owns("d", []byte(key)) {
				return []string{"d@d:2"}
			}
			return nil
		})
		// after a join: the former owners that lost the key, "gone" left out (not in the ring)
		f(nil, []*ring.Ring{old}, key, func(targets []ring.Node) []string {
			var out []string
			for _, rn := range old.Replicas([]byte(key)) {
				if rn.ID != "gone" && !slices.ContainsFunc(targets, clusterview.SameID(rn)) {
					now, _ := cur.Node(rn.ID)
					out = append(out, rn.ID+"@"+now.Addr)
				}
			}
			return out
		})
	}
}
