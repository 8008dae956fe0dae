package ring

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// mustNew builds a ring or fails the test.
func mustNew(t testing.TB, nodes []Node, cfg Config) *Ring {
	t.Helper()
	r, err := New(1, nodes, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// numberedNodes returns nodes n1..nk without zones.
func numberedNodes(k int) []Node {
	nodes := make([]Node, k)
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		nodes[i] = Node{ID: id, Addr: fmt.Sprintf("10.0.0.%d:7000", i+1)}
	}
	return nodes
}

// zonedNodes returns one node per entry of zones, named n1, n2, ... and
// placed in the given zone.
func zonedNodes(zones ...string) []Node {
	nodes := numberedNodes(len(zones))
	for i, z := range zones {
		nodes[i].Zone = z
	}
	return nodes
}

// randomKeys returns count random 20-byte keys (the size of a SHA-1 object
// ID) from a fixed seed, so every run measures the same keys.
func randomKeys(seed uint64, count int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	keys := make([][]byte, count)
	for i := range keys {
		k := make([]byte, 20)
		for j := range k {
			k[j] = byte(rng.Uint32())
		}
		keys[i] = k
	}
	return keys
}

// randomPositions returns the ring positions of randomKeys(seed, count), so
// that tests looking up many keys on many rings hash each key once.
func randomPositions(seed uint64, count int) []uint64 {
	keys := randomKeys(seed, count)
	pos := make([]uint64, len(keys))
	for i, k := range keys {
		pos[i] = KeyPosition(k)
	}
	return pos
}

// ids returns the IDs of nodes, in order.
func ids(nodes []Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

// checkReplicaSet fails unless set holds exactly want distinct nodes.
func checkReplicaSet(t testing.TB, key []byte, set []Node, want int) {
	t.Helper()
	if len(set) != want {
		t.Fatalf("Replicas(%x): got %d nodes %v; want %d", key, len(set), ids(set), want)
	}
	seen := make(map[string]bool, len(set))
	for _, n := range set {
		if seen[n.ID] {
			t.Fatalf("Replicas(%x): got %v; want distinct nodes", key, ids(set))
		}
		seen[n.ID] = true
	}
}
