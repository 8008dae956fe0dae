package ring

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This file restates the placement rules of the package doc as plainly as
// possible, independent of placement.go, and checks the real code against
// it. The golden file pins today's answers; this checks they are the answers
// the documented rules give.

type specPoint struct {
	pos uint64
	id  string
}

func specHash(s string) uint64 {
	h := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(h[:8])
}

// specPoints lists every vnode, sorted by position and then by node ID.
func specPoints(nodes []Node, vnodes int) []specPoint {
	var pts []specPoint
	for _, n := range nodes {
		for i := 0; i < vnodes; i++ {
			pts = append(pts, specPoint{specHash(n.ID + "#" + strconv.Itoa(i)), n.ID})
		}
	}
	slices.SortFunc(pts, func(a, b specPoint) int {
		if a.pos != b.pos {
			if a.pos < b.pos {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	return pts
}

// specReplicas walks the points by the documented rules with a linear scan.
func specReplicas(nodes []Node, pts []specPoint, n int, key []byte) []string {
	zone := map[string]string{}
	zones := map[string]bool{}
	zoned := false
	for _, nd := range nodes {
		zone[nd.ID], zones[nd.Zone], zoned = nd.Zone, true, zoned || nd.Zone != ""
	}
	kpos := specHash(string(key))
	start := 0
	for i, p := range pts {
		if p.pos >= kpos {
			start = i
			break
		}
	}
	var set []string
	pass := func(want int, newZone bool) {
		for step := 0; step < len(pts) && len(set) < want; step++ {
			id := pts[(start+step)%len(pts)].id
			taken := slices.ContainsFunc(set, func(s string) bool {
				return s == id || newZone && zone[s] == zone[id]
			})
			if !taken {
				set = append(set, id)
			}
		}
	}
	if zoned {
		pass(min(n, len(zones)), true)
	}
	pass(min(n, len(nodes)), false)
	return set
}

func TestMatchesSpec(t *testing.T) {
	f := func(nodes []Node, cfg Config) {
		t.Helper()
		r := mustNew(t, nodes, cfg)
		pts := specPoints(nodes, cfg.VNodes)
		for _, key := range randomKeys(11, 2000) {
			got, want := ids(r.Replicas(key)), specReplicas(nodes, pts, cfg.Replicas, key)
			if !slices.Equal(got, want) {
				t.Fatalf("nodes %v, key %x: got %v; want %v", nodes, key, got, want)
			}
		}
	}
	f(numberedNodes(5), Config{Replicas: 3, VNodes: 16})
	f(numberedNodes(12), Config{Replicas: 4, VNodes: 8})
	f(zonedNodes("a", "b", "a", "c", ""), Config{Replicas: 3, VNodes: 16})
	f(zonedNodes("a", "b", "a", "b", "a"), Config{Replicas: 3, VNodes: 16})
	f(zonedNodes("a", "a", "a", "b"), Config{Replicas: 4, VNodes: 4})
}

func TestKeyPosition(t *testing.T) {
	f := func(key string, want uint64) {
		t.Helper()
		if got := KeyPosition([]byte(key)); got != want {
			t.Fatalf("KeyPosition(%q): got %#x; want %#x", key, got, want)
		}
	}
	// SHA-256("") = e3b0c44298fc1c14 9afbf4c8996fb924...
	f("", 0xe3b0c44298fc1c14)
	// SHA-256("abc") = ba7816bf8f01cfea 414140de5dae2223...
	f("abc", 0xba7816bf8f01cfea)
}
