// Package repair is a data node's background repair (docs/repair.md): the
// loops that bring replicas back to what the ring places on them, and
// keep the store's own garbage collected.
//
//	antientropy.go     rounds with each peer: digests, page diffs, push and pull
//	aedigest.go        the digests and lists a peer asks this node for
//	recovery.go        a priority round after downtime, and the healthy mark
//	shed.go, settle.go copies the ring no longer places here; when moves are done
//	drain.go           a DRAINING node copies everything away, then says so
//	handoff.go         delivery of the hints the object protocol queued
//	scrub.go           re-verification of local copies, replaced from a replica
//	storeloops.go      tombstone expiry and value-log collection
//	repairprogress.go  the cluster-wide pause and the round's progress
//
// Every copy, read and tombstone goes through the object protocol (package
// objects), fenced by the ring revision of the view it was decided under.
// The data node builds a Server with New and runs each loop as one of its
// own goroutines.
//
// # Caveats
//
// A loop holds at its next step while repair is paused cluster-wide
// (holdWhilePaused), and a node that starts while paused moves nothing
// until the pause is known (StartRepairWatch waits up to 5 s for it).
// Shedding deletes a local copy only once the owners hold verified ones:
// it must never be the step that loses the last copy.
package repair
