package datanode

import (
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// view is a node's immutable picture of the cluster, swapped whole through
// an atomic pointer: the ring, the ring without DRAINING nodes (where new
// writes go), and the member records.
type view struct {
	ring    *ring.Ring
	write   *ring.Ring
	prev    *ring.Ring // the ring before ring's revision: reads also ask its owners last
	members map[string]api.Member
}

// state is a member's state; a ring node without a member record (the
// control plane briefly behind) counts as ACTIVE.
func (v *view) state(id string) api.MemberState {
	if m, ok := v.members[id]; ok {
		return m.State
	}
	return api.StateActive
}

// buildView derives the write ring from r and members. It is pure.
func buildView(r *ring.Ring, members map[string]api.Member) (*view, error) {
	v := &view{ring: r, write: r, members: members}
	if r == nil {
		return v, nil
	}
	var keep []ring.Node
	for _, n := range r.Nodes() {
		if members[n.ID].State != api.StateDraining {
			keep = append(keep, n)
		}
	}
	if len(keep) == r.Len() {
		return v, nil
	}
	w, err := ring.New(r.Revision(), keep, r.Config())
	if err != nil {
		return nil, err
	}
	v.write = w
	return v, nil
}

// swapView rebuilds the view with a newer ring or new members. viewMu
// serialises writers only (it is never held with another lock); readers
// load the pointer.
func (n *Node) swapView(r *ring.Ring, members map[string]api.Member) {
	n.viewMu.Lock()
	defer n.viewMu.Unlock()
	cur := n.view.Load()
	if r == nil || (cur.ring != nil && cur.ring.Revision() >= r.Revision()) {
		r = cur.ring
	}
	if members == nil {
		members = cur.members
	}
	v, err := buildView(r, members)
	if err != nil {
		n.logger.Error("view rebuild failed; keeping the previous one", "err", err)
		return
	}
	v.prev = cur.prev
	if cur.ring != nil && r != cur.ring {
		v.prev = cur.ring
	}
	n.view.Store(v)
}

// publishRing swaps in r if it is newer than the ring in use.
func (n *Node) publishRing(r *ring.Ring) {
	if cur := n.view.Load().ring; cur != nil && cur.Revision() >= r.Revision() {
		return
	}
	n.swapView(r, nil)
	n.logger.Info("ring published", "revision", r.Revision(), "nodes", r.Len())
	// A removal deletes the member record, then the ring entry; whichever
	// arrives last must still fence this node.
	if v := n.view.Load(); v.members != nil {
		if _, member := v.members[n.cfg.ID]; !member {
			if _, inRing := r.Node(n.cfg.ID); !inRing {
				n.fence("removed from the cluster")
			}
		}
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
		n.startDrain()
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
	if m, ok := n.view.Load().members[id]; ok && m.Generation == gen && m.State != api.StateDown {
		return nil
	}
	cctx, cancel := context.WithTimeout(n.life, time.Second)
	defer cancel()
	m, ok, err := n.cfg.Control.Member(cctx, id)
	switch {
	case err != nil:
		// Unconfirmed: refuse without the fencing code, so a legitimate new
		// generation is never fenced on a stale cached view.
		if m, ok := n.view.Load().members[id]; ok && (m.Generation != gen || m.State == api.StateDown) {
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
