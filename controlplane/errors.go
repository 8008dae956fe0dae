package controlplane

import "errors"

// Sentinel errors.
var (
	// ErrNodeIDInUse: a live process of another generation holds the node ID.
	ErrNodeIDInUse = errors.New("controlplane: node id held by a live process of another generation")
	// ErrNoRing: no ring record exists yet.
	ErrNoRing = errors.New("controlplane: no ring record")
	// ErrRingConflict: the ring record already fixes a different replication
	// factor or vnode count than the joining node was configured with.
	ErrRingConflict = errors.New("controlplane: ring settings conflict")
	// ErrFenced: this process's generation was replaced, or it was declared
	// DOWN; it must stop serving writes and restart.
	ErrFenced = errors.New("controlplane: this generation is fenced (replaced or declared DOWN)")
	// ErrUnknownNode: no member record and no ring entry has this ID.
	ErrUnknownNode = errors.New("controlplane: unknown node")
	// ErrUnsafe: the admin action would leave objects below their
	// replication factor; it needs force.
	ErrUnsafe = errors.New("controlplane: unsafe")
	// ErrNotLeader: a detector write found its election key gone: it is no
	// longer the leader and must not mark anything.
	ErrNotLeader = errors.New("controlplane: no longer the detector leader")
	// ErrBadState: the member is not in a state that allows the action.
	ErrBadState = errors.New("controlplane: member state does not allow this")
)
