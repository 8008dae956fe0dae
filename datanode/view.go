package datanode

import (
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/ring"
)

// swapView rebuilds the view with a newer ring or new members. viewMu
// serialises writers only (it is never held with another lock); readers
// load the pointer.
func (n *Node) swapView(r *ring.Ring, members map[string]api.Member) {
	n.viewMu.Lock()
	defer n.viewMu.Unlock()
	cur := n.view.Load()
	if r == nil || (cur.Ring != nil && cur.Ring.Revision() >= r.Revision()) {
		r = cur.Ring
	}
	if members == nil {
		members = cur.Members
	}
	v, err := clusterview.Build(r, members)
	if err != nil {
		n.logger.Error("view rebuild failed; keeping the previous one", "err", err)
		return
	}
	v.Former, v.Partial = cur.Former, cur.Partial
	switch {
	case cur.Ring == nil:
		v.Partial = true // a new process: which rings came before is unknown
	case r != cur.Ring:
		v.Former = append([]*ring.Ring{cur.Ring}, cur.Former...)
		if len(v.Former) > clusterview.MaxFormerRings {
			v.Former, v.Partial = v.Former[:clusterview.MaxFormerRings], true
		}
	}
	n.view.Store(v)
}

// settle drops the earlier rings from the view once the moves up to ring
// revision rev are finished everywhere (settleLoop), if rev is still the
// current revision.
func (n *Node) settle(rev int64) {
	n.viewMu.Lock()
	defer n.viewMu.Unlock()
	cur := n.view.Load()
	if cur.Ring == nil || cur.Ring.Revision() != rev || (len(cur.Former) == 0 && !cur.Partial) {
		return
	}
	v := *cur
	v.Former, v.Partial = nil, false
	n.view.Store(&v)
	n.logger.Info("moves finished on every node; reads ask the current owners only", "revision", rev)
}

// publishRing swaps in r if it is newer than the ring in use.
func (n *Node) publishRing(r *ring.Ring) {
	if cur := n.view.Load().Ring; cur != nil && cur.Revision() >= r.Revision() {
		return
	}
	n.swapView(r, nil)
	n.prunePeers()
	n.logger.Debug("ring published", "revision", r.Revision(), "nodes", r.Len())
	// A removal deletes the member record, then the ring entry; whichever
	// arrives last must still fence this node.
	if v := n.view.Load(); v.Members != nil {
		if _, member := v.Members[n.cfg.ID]; !member {
			if _, inRing := r.Node(n.cfg.ID); !inRing {
				n.fence("removed from the cluster")
			}
		}
	}
}

// prunePeers drops the peer clients of addresses the current ring no
// longer has (nodes removed, or moved to another address); reads reach the
// owners under earlier rings at their current addresses (view.readSet).
func (n *Node) prunePeers() {
	v := n.view.Load()
	if n.peers == nil || v.Ring == nil {
		return
	}
	keep := map[string]bool{}
	for _, rn := range v.Ring.Nodes() {
		keep[rn.Addr] = true
	}
	if k := n.peers.Retain(keep); k > 0 {
		n.logger.Debug("dropped clients of addresses no longer in the ring", "count", k)
	}
}

// publishMembers swaps in new member records and reacts to this node's own:
// a replaced generation or a DOWN verdict fences it; DRAINING starts the
// drain worker.
func (n *Node) publishMembers(members map[string]api.Member) {
	n.swapView(nil, members)
	self, ok := members[n.cfg.ID]
	if !ok {
		// No member record: removed by an operator, if the ring agrees.
		if r := n.Ring(); r != nil {
			if _, inRing := r.Node(n.cfg.ID); !inRing {
				n.fence("removed from the cluster")
			}
		}
		return
	}
	if self.Generation != n.generation || self.State == api.StateDown {
		n.fence(fmt.Sprintf("member record says generation %s, state %s", self.Generation, self.State))
		return
	}
	if self.State == api.StateDraining && !self.Drained {
		n.rep.StartDrain()
	}
}

// fence stops this process from coordinating writes for good: another
// generation replaced it, or it was declared DOWN. It must be restarted.
func (n *Node) fence(why string) {
	if !n.fenced.Swap(true) {
		n.logger.Error("fenced: this generation no longer owns the node id; restart the process", "why", why)
	}
}

// watchMembers follows member records until ctx is done.
func (n *Node) watchMembers(ctx context.Context) {
	n.cfg.Control.WatchMembers(ctx, n.publishMembers)
}

// checkGeneration refuses a replica call from a coordinator whose generation
// is not its member's current one, or whose member is DOWN or gone. A
// mismatch with the cached view is confirmed with etcd when etcd answers, so
// a peer that registered a moment ago is not refused.
func (n *Node) checkGeneration(ctx *fasthttp.RequestCtx) error {
	id := string(ctx.Request.Header.Peek(api.HeaderNode))
	gen := string(ctx.Request.Header.Peek(api.HeaderGeneration))
	if id == "" || gen == "" {
		return fmt.Errorf("%w: replica calls must carry %s and %s", api.ErrBadRequest, api.HeaderNode, api.HeaderGeneration)
	}
	if m, ok := n.view.Load().Members[id]; ok && m.Generation == gen && m.State != api.StateDown {
		return nil
	}
	cctx, cancel := context.WithTimeout(n.life, time.Second)
	defer cancel()
	m, ok, err := n.cfg.Control.Member(cctx, id)
	switch {
	case err != nil:
		// Unconfirmed: refuse without the fencing code, so a legitimate new
		// generation is never fenced on a stale cached view.
		if m, ok := n.view.Load().Members[id]; ok && (m.Generation != gen || m.State == api.StateDown) {
			return fmt.Errorf("%w: cannot confirm %s generation %s with the control plane", api.ErrNotReady, id, gen)
		}
		return nil
	case !ok:
		return fmt.Errorf("%w: %s is not a member", api.ErrStaleGeneration, id)
	case m.Generation != gen || m.State == api.StateDown:
		return fmt.Errorf("%w: %s generation %s; current is %s (%s)", api.ErrStaleGeneration, id, gen, m.Generation, m.State)
	}
	return nil
}

// CachedMember is member id as this node's watched view has it, which
// replica calls are first checked against (checkGeneration): for tests
// and diagnostics. The view follows etcd by a watch, so it can lag the
// control plane by the watch's delivery time.
func (n *Node) CachedMember(id string) (api.Member, bool) {
	m, ok := n.view.Load().Members[id]
	return m, ok
}

// ReadHistory reports how many earlier rings this node's reads still ask
// (their owners last) and whether they ask every ring node because the
// history is incomplete: for tests and diagnostics.
func (n *Node) ReadHistory() (former int, partial bool) {
	v := n.view.Load()
	return len(v.Former), v.Partial
}
