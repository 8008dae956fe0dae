package datanode

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// view is a node's immutable picture of the cluster, swapped whole through
// an atomic pointer: the ring, the ring without DRAINING nodes (where new
// writes go), the earlier rings whose moves may be unfinished, and the
// member records.
type view struct {
	ring  *ring.Ring
	write *ring.Ring
	// former are the rings before ring, newest first, at most
	// maxFormerRings of them: their owners may still hold copies the
	// current owners lack (moves are not known to be finished), so reads
	// ask them last. settleLoop empties it once every node reports its
	// moves done under the current ring.
	former []*ring.Ring
	// partial means rings older than former may hold copies too: the
	// history went past maxFormerRings, or this process started without
	// it. A read then asks every other ring node last as well.
	partial bool
	members map[string]api.Member
}

// maxFormerRings bounds the earlier rings a view keeps as read sources.
// Past it the oldest is dropped and the view becomes partial (reads ask
// every node of the ring last), until the moves are known finished.
const maxFormerRings = 8

// readSet is where a read of key looks: current are the replicas under the
// ring and the write ring (both placements during a drain), readable ones
// only; former are the other readable ring nodes that may still hold a
// copy from an earlier ring (a copy there counts, an absence does not).
func (v *view) readSet(key []byte) (current, former []ring.Node) {
	for _, rn := range append(v.ring.Replicas(key), v.write.Replicas(key)...) {
		if v.state(rn.ID).ReadTarget() && !slices.ContainsFunc(current, sameID(rn)) {
			current = append(current, rn)
		}
	}
	add := func(rn ring.Node) {
		now, member := v.ring.Node(rn.ID) // the address the current ring gives it
		if member && v.state(rn.ID).ReadTarget() && !slices.ContainsFunc(current, sameID(rn)) && !slices.ContainsFunc(former, sameID(rn)) {
			former = append(former, now)
		}
	}
	for _, r := range v.former {
		for _, rn := range r.Replicas(key) {
			add(rn)
		}
	}
	if v.partial {
		for _, rn := range v.ring.Nodes() {
			add(rn)
		}
	}
	return current, former
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
	v.former, v.partial = cur.former, cur.partial
	switch {
	case cur.ring == nil:
		v.partial = true // a new process: which rings came before is unknown
	case r != cur.ring:
		v.former = append([]*ring.Ring{cur.ring}, cur.former...)
		if len(v.former) > maxFormerRings {
			v.former, v.partial = v.former[:maxFormerRings], true
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
	if cur.ring == nil || cur.ring.Revision() != rev || (len(cur.former) == 0 && !cur.partial) {
		return
	}
	v := *cur
	v.former, v.partial = nil, false
	n.view.Store(&v)
	n.logger.Info("moves finished on every node; reads ask the current owners only", "revision", rev)
}

// publishRing swaps in r if it is newer than the ring in use.
func (n *Node) publishRing(r *ring.Ring) {
	if cur := n.view.Load().ring; cur != nil && cur.Revision() >= r.Revision() {
		return
	}
	n.swapView(r, nil)
	n.prunePeers()
	n.logger.Debug("ring published", "revision", r.Revision(), "nodes", r.Len())
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

// prunePeers drops the peer clients of addresses the current ring no
// longer has (nodes removed, or moved to another address); reads reach the
// owners under earlier rings at their current addresses (view.readSet).
func (n *Node) prunePeers() {
	v := n.view.Load()
	if n.peers == nil || v.ring == nil {
		return
	}
	keep := map[string]bool{}
	for _, rn := range v.ring.Nodes() {
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
