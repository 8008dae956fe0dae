package datanode

import (
	"context"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// Shedding: the last step of a move. After a ring change (a join, a drain,
// a removal) a node may hold copies the view no longer places on it. Such
// a copy is removed here only once every node of the object's write
// placement (N of them, none DOWN) confirms, under this node's ring
// revision, that it holds a copy; an owner that lacks one is sent this
// copy first, and the copy is removed on a later round. So a copy leaves a
// node only when N others hold it, and a crash at any point leaves at
// worst a spare copy, shed on the next round. Removal leaves no tombstone:
// the object is not deleted.

// shedChunk is how many OIDs one presence request per owner carries.
const shedChunk = 256

// shedRound goes once over the local copies the view does not place here.
// It returns how many it removed, and how many it still keeps (waiting for
// an owner's confirmation).
func (n *Node) shedRound(ctx context.Context) (removed, kept int, err error) {
	v := n.view.Load()
	if v.ring == nil || n.fenced.Load() {
		return 0, 0, nil
	}
	var misplaced []api.OID
	err = n.store.Range(ctx, func(oid api.OID, _ int64) bool {
		if !placedOn(v.write, oid, n.cfg.ID) {
			misplaced = append(misplaced, oid)
		}
		return true
	})
	if err != nil {
		return 0, 0, err
	}
	pace := time.Second / time.Duration(n.cfg.AntiEntropyRate)
	for len(misplaced) > 0 && n.holdWhilePaused(ctx) {
		chunk := misplaced[:min(shedChunk, len(misplaced))]
		misplaced = misplaced[len(chunk):]
		r, k := n.shedChunk(ctx, v, chunk, pace)
		removed, kept = removed+r, kept+k
	}
	if removed > 0 || kept > 0 {
		n.logger.Info("shed copies placed elsewhere", "removed", removed, "kept", kept)
	}
	n.shedKept.Store(int64(kept + len(misplaced)))
	return removed, kept + len(misplaced), ctx.Err()
}

func placedOn(r *ring.Ring, oid api.OID, id string) bool {
	for _, rn := range r.Replicas([]byte(oid.String())) {
		if rn.ID == id {
			return true
		}
	}
	return false
}

// shedChunk asks each owner of chunk's objects which it holds, removes the
// local copies that all N owners hold, and sends the others to the owners
// that lack them.
func (n *Node) shedChunk(ctx context.Context, v *view, chunk []api.OID, pace time.Duration) (removed, kept int) {
	rev := v.ring.Revision()
	owners := map[ring.Node][]int{}
	confirmed := make([]int, len(chunk))
	for i, oid := range chunk {
		for _, rn := range v.write.Replicas([]byte(oid.String())) {
			if v.state(rn.ID).WriteTarget() {
				owners[rn] = append(owners[rn], i)
			}
		}
	}
	lacking := map[ring.Node][]int{}
	for rn, idx := range owners {
		present, err := n.hasGroup(rn, chunk, idx, rev)
		if err != nil {
			continue // unconfirmed: kept
		}
		for j, i := range idx {
			if present[j] {
				confirmed[i]++
			} else {
				lacking[rn] = append(lacking[rn], i)
			}
		}
	}
	need := v.ring.ReplicationFactor()
	for i, oid := range chunk {
		if confirmed[i] >= need && n.store.Remove(ctx, oid) == nil {
			removed++
		} else {
			kept++
		}
	}
	for rn, idx := range lacking {
		for _, i := range idx {
			if !n.holdWhilePaused(ctx) {
				return removed, kept
			}
			if n.copyTo(ctx, rn, chunk[i], rev) == nil {
				n.countAE("push", 1, 0)
			}
			sleepCtx(ctx, pace)
		}
	}
	return removed, kept
}
