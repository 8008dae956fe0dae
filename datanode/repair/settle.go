package repair

import (
	"context"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/internal/retry"
)

// Settling: when reads may stop asking the owners under earlier rings.
//
// After a ring change a copy can sit on a node the new ring no longer
// places it on, until the node's shed round sees every new owner hold it
// (shed.go). So a view keeps the earlier rings as read sources (view.former,
// at most maxFormerRings, or every ring node once past that bound:
// view.partial). A node that holds nothing the ring of revision r places
// elsewhere records r (Node.settled, /v1/status settled_revision): each
// misplaced copy left only once its N owners under r held it (shed.go), and
// a replica refuses writes under older revisions. Once every node of the
// current ring reports the current revision, every copy made under an
// earlier ring is on its owners under this one, and the view drops the
// earlier rings.
//
// A node that does not answer (down, flaky, its anti-entropy round never
// completing) only delays the drop: shedding and moves go on without it,
// and the history stays bounded.

// SettleLoop records whether this node holds anything misplaced under the
// current ring, and, while the view keeps earlier rings, whether every
// node has settled under the current ring. It checks within settlePoll of
// a new ring revision, then every settleInterval: a node that starts, or
// sees the ring change, settles as soon as it holds nothing misplaced
// instead of up to settleInterval later (when its store may have grown,
// making the scan longer: a fresh cluster's first settle used to land in
// the middle of its first writes, 4 % of a git push's CPU).
func (n *Server) SettleLoop(ctx context.Context) {
	var checked int64 // ring revision of the last check
	var at time.Time  // and when it ran
	retry.Every(ctx, settlePoll, func() {
		v := n.view()
		if v.Ring == nil {
			return
		}
		if v.Ring.Revision() == checked && time.Since(at) < n.settleInterval() {
			return
		}
		checked, at = v.Ring.Revision(), time.Now()
		n.settleSelf(ctx, v)
		// Peers are asked only once this node itself is settled: until
		// then the answer cannot be yes.
		if (len(v.Former) > 0 || v.Partial) && n.settled.Load() >= v.Ring.Revision() && n.allSettled(v.Ring.Revision()) {
			n.d.Settle(v.Ring.Revision())
		}
	})
}

// settlePoll is how soon SettleLoop notices a new ring revision.
const settlePoll = time.Second

// settleSelf records v's ring revision as settled if the ring places every
// local copy on this node (a draining node's copies count as placed: reads
// ask the ring's owners and the write ring's both). Once settled under the
// current revision it reads nothing until the ring changes.
func (n *Server) settleSelf(ctx context.Context, v *clusterview.View) {
	rev := v.Ring.Revision()
	if n.settled.Load() >= rev {
		return
	}
	misplaced := false
	err := n.store.Range(ctx, func(oid api.OID, _ int64) bool {
		misplaced = !placedOn(v.Ring, oid, n.cfg.ID)
		return !misplaced
	})
	if err == nil && !misplaced && n.view().Ring.Revision() == rev {
		n.settled.Store(rev)
	}
}

// settleInterval follows the anti-entropy interval (shed rounds come no
// faster), within 1 s and 10 s.
func (n *Server) settleInterval() time.Duration {
	d := n.cfg.AntiEntropyInterval
	if d <= 0 || d > 10*time.Second {
		return 10 * time.Second
	}
	return max(d, time.Second)
}

// allSettled reports whether every node of the current ring reports a
// settled revision of at least rev.
func (n *Server) allSettled(rev int64) bool {
	v := n.view()
	for _, rn := range v.Ring.Nodes() {
		st, ok := n.d.PeerStatus(api.NodeStatus{ID: rn.ID, Addr: rn.Addr})
		if !ok || st.SettledRevision < rev {
			return false
		}
	}
	return true
}
