package ring

import (
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
)

// zonesOf returns the set of zones the nodes are in.
func zonesOf(nodes []Node) map[string]bool {
	z := make(map[string]bool)
	for _, n := range nodes {
		z[n.Zone] = true
	}
	return z
}

// TestZoneSpread checks that replica sets cover as many zones as they can:
// all of them up to N, and N distinct nodes whatever the zone count.
func TestZoneSpread(t *testing.T) {
	f := func(replicas int, zones ...string) {
		t.Helper()
		nodes := zonedNodes(zones...)
		r := mustNew(t, nodes, Config{Replicas: replicas})
		want := min(replicas, len(zonesOf(nodes)))
		for _, key := range randomKeys(8, 5000) {
			set := r.Replicas(key)
			checkReplicaSet(t, key, set, min(replicas, len(nodes)))
			if got := len(zonesOf(set)); got != want {
				t.Fatalf("zones %v, N=%d, key %x: set %v spans %d zones; want %d", zones, replicas, key, ids(set), got, want)
			}
		}
	}
	f(3, "a", "b", "c", "a", "b", "c")
	f(3, "a", "a", "b", "b", "c", "c")
	f(3, "a", "b", "a", "b", "a", "b")
	f(3, "a", "a", "a", "a", "b", "b")
	f(3, "a", "a", "a", "a", "a", "b")
	f(2, "a", "b", "c", "a", "b", "c")
	f(4, "a", "b", "c", "a", "b", "c")
	f(3, "a", "b", "", "", "a")
}

// TestZonesKeepPrimary checks that zones never change a key's primary: the
// zone-aware walk only reorders the nodes after it, so adding zone labels to
// a running cluster moves no primaries.
func TestZonesKeepPrimary(t *testing.T) {
	zoned := mustNew(t, zonedNodes("a", "b", "c", "a", "b", "c", "a"), DefaultConfig())
	plain := mustNew(t, numberedNodes(7), DefaultConfig())
	for _, key := range randomKeys(9, 5000) {
		z, p := zoned.Replicas(key)[0].ID, plain.Replicas(key)[0].ID
		if z != p {
			t.Fatalf("key %x: zoned primary %s; want plain primary %s", key, z, p)
		}
	}
}

// TestZoneOrder checks the two-pass walk on a case worked by hand: with
// zones a, a, b and N = 3, the set is the first node clockwise, then the
// first node of the other zone, then the remaining node.
func TestZoneOrder(t *testing.T) {
	r := mustNew(t, zonedNodes("a", "a", "b"), Config{VNodes: 64})
	for _, key := range randomKeys(10, 1000) {
		set := r.Replicas(key)
		if set[0].Zone == set[1].Zone {
			t.Fatalf("key %x: got %v in zones %s, %s; want the second node from the other zone",
				key, ids(set), set[0].Zone, set[1].Zone)
		}
	}
}

// naivePrimary finds a position's primary by a linear scan of the points:
// the owner of the smallest point >= pos, or of the smallest point overall.
func naivePrimary(r *Ring, pos uint64) int32 {
	best := -1
	for i, p := range r.points {
		if p >= pos && (best < 0 || p < r.points[best]) {
			best = i
		}
	}
	if best < 0 {
		best = 0
	}
	return r.owners[best]
}

func FuzzReplicas(f *testing.F) {
	rings := []*Ring{
		mustNew(f, numberedNodes(7), Config{Replicas: 3, VNodes: 32}),
		mustNew(f, zonedNodes("a", "b", "a", "b", "a"), Config{Replicas: 3, VNodes: 32}),
		mustNew(f, numberedNodes(2), Config{Replicas: 3, VNodes: 32}),
		mustNew(f, numberedNodes(1), Config{Replicas: 1, VNodes: 1}),
	}
	for _, seed := range []string{"", "a", "0123456789abcdef0123456789abcdef01234567"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		for _, r := range rings {
			set := r.Replicas(key)
			checkReplicaSet(t, key, set, min(r.ReplicationFactor(), r.Len()))
			if got, want := set[0].ID, r.nodes[naivePrimary(r, KeyPosition(key))].ID; got != want {
				t.Fatalf("Replicas(%x)[0]: got %s; want %s", key, got, want)
			}
			for _, n := range set {
				if !r.Owns(n.ID, key) {
					t.Fatalf("Owns(%s, %x): got false; want true (replicas %v)", n.ID, key, ids(set))
				}
			}
		}
	})
}

func TestPointsSorted(t *testing.T) {
	r := mustNew(t, numberedNodes(5), Config{VNodes: 100})
	if got, want := len(r.points), 500; got != want {
		t.Fatalf("points: got %d; want %d", got, want)
	}
	if !slices.IsSorted(r.points) {
		t.Fatalf("points are not ascending")
	}
}

func BenchmarkReplicas(b *testing.B) {
	r := mustNew(b, numberedNodes(16), DefaultConfig())
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte(hex.EncodeToString(randomKeys(uint64(i), 1)[0]))
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		r.Replicas(keys[i%len(keys)])
		i++
	}
}

func BenchmarkNew(b *testing.B) {
	for _, k := range []int{16, 100} {
		nodes := numberedNodes(k)
		b.Run(fmt.Sprintf("nodes=%d", k), func(b *testing.B) {
			for b.Loop() {
				mustNew(b, nodes, DefaultConfig())
			}
		})
	}
}
