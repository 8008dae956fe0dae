// Package clusterview holds a data node's picture of the cluster: the
// ring, the ring new writes go to (without DRAINING nodes), the earlier
// rings whose moves may be unfinished, and the member records. A View is
// immutable: the node builds a new one on every ring or member change and
// publishes it through an atomic pointer, so readers never lock.
//
// # Caveats
//
// A View's ring revision is the fencing token of every replica call made
// under it: take one View per operation and use its ring throughout, never
// the node's current View twice.
package clusterview

import (
	"slices"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// View is a node's immutable picture of the cluster, swapped whole through
// an atomic pointer: the ring, the ring without DRAINING nodes (where new
// writes go), the earlier rings whose moves may be unfinished, and the
// member records.
type View struct {
	Ring  *ring.Ring
	Write *ring.Ring
	// Former are the rings before ring, newest first, at most
	// maxFormerRings of them: their owners may still hold copies the
	// current owners lack (moves are not known to be finished), so reads
	// ask them last. settleLoop empties it once every node reports its
	// moves done under the current ring.
	Former []*ring.Ring
	// Partial means rings older than former may hold copies too: the
	// history went past maxFormerRings, or this process started without
	// it. A read then asks every other ring node last as well.
	Partial bool
	Members map[string]api.Member
}

// MaxFormerRings bounds the earlier rings a view keeps as read sources.
// Past it the oldest is dropped and the view becomes partial (reads ask
// every node of the ring last), until the moves are known finished.
const MaxFormerRings = 8

// ReadSet is where a read of key looks: current are the replicas under the
// ring and the write ring (both placements during a drain), readable ones
// only; former are the other readable ring nodes that may still hold a
// copy from an earlier ring (a copy there counts, an absence does not).
func (v *View) ReadSet(key []byte) (current, former []ring.Node) {
	owners := v.Ring.Replicas(key)
	if v.Write != v.Ring { // a drain: the write ring places some keys elsewhere
		owners = append(owners, v.Write.Replicas(key)...)
	}
	current = make([]ring.Node, 0, len(owners))
	for _, rn := range owners {
		if v.State(rn.ID).ReadTarget() && !slices.ContainsFunc(current, SameID(rn)) {
			current = append(current, rn)
		}
	}
	add := func(rn ring.Node) {
		now, member := v.Ring.Node(rn.ID) // the address the current ring gives it
		if member && v.State(rn.ID).ReadTarget() && !slices.ContainsFunc(current, SameID(rn)) && !slices.ContainsFunc(former, SameID(rn)) {
			former = append(former, now)
		}
	}
	for _, r := range v.Former {
		for _, rn := range r.Replicas(key) {
			add(rn)
		}
	}
	if v.Partial {
		for _, rn := range v.Ring.Nodes() {
			add(rn)
		}
	}
	return current, former
}

// State is a member's State; a ring node without a member record (the
// control plane briefly behind) counts as ACTIVE.
func (v *View) State(id string) api.MemberState {
	if m, ok := v.Members[id]; ok {
		return m.State
	}
	return api.StateActive
}

// Build derives the write ring from r and members. It is pure.
func Build(r *ring.Ring, members map[string]api.Member) (*View, error) {
	v := &View{Ring: r, Write: r, Members: members}
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
	v.Write = w
	return v, nil
}

// SameID matches ring nodes of a's ID (at whatever address).
func SameID(a ring.Node) func(ring.Node) bool { return func(b ring.Node) bool { return a.ID == b.ID } }

// RingNode finds the node of ID id in r (nil: none).
func RingNode(r *ring.Ring, id string) (ring.Node, bool) {
	if r == nil {
		return ring.Node{}, false
	}
	for _, rn := range r.Nodes() {
		if rn.ID == id {
			return rn, true
		}
	}
	return ring.Node{}, false
}
