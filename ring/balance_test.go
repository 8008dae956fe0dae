package ring

import (
	"fmt"
	"math"
	"testing"
)

// balanceKeys is how many random keys the balance and movement tests place.
// With 16 nodes a node's fair share is 12500 keys, so sampling noise is
// under 1% and the +-10% bound measures the ring, not the sample. -short
// and the race detector halve it to 100k, where the noise is about 1.3% and
// the bound still holds.
func balanceKeys() int {
	if testing.Short() || raceEnabled {
		return 100_000
	}
	return 200_000
}

// counts places every position on r and counts, per node index, how often
// the node is primary and how often it is in the replica set.
func counts(r *Ring, positions []uint64) (primary, member []int) {
	primary = make([]int, r.Len())
	member = make([]int, r.Len())
	var buf [8]int32
	for _, p := range positions {
		set := r.replicaIndexes(p, buf[:0])
		primary[set[0]]++
		for _, i := range set {
			member[i]++
		}
	}
	return primary, member
}

// worstDeviation returns the largest |got/fair - 1| over the nodes of r and
// the node it belongs to.
func worstDeviation(r *Ring, got []int, fair float64) (float64, string) {
	worst, who := 0.0, ""
	for i, n := range r.nodes {
		if d := math.Abs(float64(got[i])/fair - 1); d > worst {
			worst, who = d, n.ID
		}
	}
	return worst, who
}

// TestBalance checks that with the default VNodes every node of a 3..16
// node ring gets its fair share of keys within +-10%, both as primary and
// as a member of the replica set. The worst deviations are logged; they are
// the numbers quoted on Config.VNodes.
func TestBalance(t *testing.T) {
	t.Parallel()
	const bound = 0.10
	positions := randomPositions(1, balanceKeys())
	var worstPrimary, worstMember float64
	for k := 3; k <= 16; k++ {
		r := mustNew(t, numberedNodes(k), DefaultConfig())
		primary, member := counts(r, positions)
		keys := float64(len(positions))
		dp, pw := worstDeviation(r, primary, keys/float64(k))
		dm, mw := worstDeviation(r, member, keys*float64(min(k, r.ReplicationFactor()))/float64(k))
		if dp > bound {
			t.Errorf("%d nodes: primary share of %s off fair by %.1f%%; want <= %.0f%%", k, pw, dp*100, bound*100)
		}
		if dm > bound {
			t.Errorf("%d nodes: replica-set share of %s off fair by %.1f%%; want <= %.0f%%", k, mw, dm*100, bound*100)
		}
		worstPrimary, worstMember = max(worstPrimary, dp), max(worstMember, dm)
	}
	t.Logf("%d keys, VNodes %d: worst primary deviation %.2f%%, worst replica-set deviation %.2f%%",
		len(positions), DefaultVNodes, worstPrimary*100, worstMember*100)
}

// TestMovement adds one node to rings of 3..15 nodes and checks the
// consistent-hashing promise: about 1/(n+1) of primaries move (never more
// than 1.25 times that, nor less than 0.75 times), every moved primary moves
// to the new node, and a replica set only changes to take in the new node.
func TestMovement(t *testing.T) {
	t.Parallel()
	positions := randomPositions(2, balanceKeys())
	worst := 0.0
	for n := 3; n <= 15; n++ {
		before := mustNew(t, numberedNodes(n), DefaultConfig())
		after := mustNew(t, numberedNodes(n+1), DefaultConfig())
		moved := movedPrimaries(t, before, after, fmt.Sprintf("n%d", n+1), positions)
		ratio := float64(moved) / (float64(len(positions)) / float64(n+1))
		if ratio > 1.25 || ratio < 0.75 {
			t.Errorf("%d -> %d nodes: moved %d primaries, %.2f x fair; want within [0.75, 1.25] x fair", n, n+1, moved, ratio)
		}
		worst = max(worst, ratio)
	}
	t.Logf("%d keys: worst movement ratio %.3f x 1/(n+1)", len(positions), worst)
}

// movedPrimaries counts the positions whose primary differs between before
// and after, failing the test if any moved to a node other than addedID or
// if a replica set changed without taking in addedID.
func movedPrimaries(t *testing.T, before, after *Ring, addedID string, positions []uint64) int {
	t.Helper()
	i, ok := after.indexOf(addedID)
	if _, old := before.Node(addedID); !ok || old {
		t.Fatalf("test setup: %s must be in the new ring only", addedID)
	}
	added := int32(i)
	moved := 0
	var b1, b2 [8]int32
	for _, p := range positions {
		old := before.replicaIndexes(p, b1[:0])
		cur := after.replicaIndexes(p, b2[:0])
		if before.nodes[old[0]].ID != after.nodes[cur[0]].ID {
			moved++
			if cur[0] != added {
				t.Fatalf("position %#x: primary moved %s -> %s; want moves only to the added node %s",
					p, before.nodes[old[0]].ID, after.nodes[cur[0]].ID, after.nodes[added].ID)
			}
		}
		if !sameIDs(before, old, after, cur) && !containsIndex(cur, added) {
			t.Fatalf("position %#x: replica set changed without the added node", p)
		}
	}
	return moved
}

// sameIDs reports whether two index sets from two rings name the same nodes
// in the same order.
func sameIDs(ra *Ring, a []int32, rb *Ring, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if ra.nodes[a[i]].ID != rb.nodes[b[i]].ID {
			return false
		}
	}
	return true
}

func containsIndex(set []int32, i int32) bool {
	for _, s := range set {
		if s == i {
			return true
		}
	}
	return false
}
