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
)
