// Package objects is a data node's part in the object protocol of
// docs/consistency.md: leaderless quorum replication of immutable,
// content-addressed objects. Any node coordinates a request: it places
// the object on the ring, fans the write or read out to the replicas in
// parallel, and answers once the requested consistency (one, quorum,
// all) is met. Every node is also a replica of the other coordinators'
// calls, which it admits only under the current ring revision (the
// fencing token) and from a current generation of the caller.
//
// A Server holds both sides. Its files follow the protocol's parts:
//
//	coordinator.go  placement, fan-out, tallies, PUT/GET/HEAD, read repair
//	deletes.go      deletes and tombstones, both sides
//	batch.go        batch PUT, both sides
//	batchget.go     batch GET and presence (HAS), both sides
//	replica.go      one replica's copy: the calls and their handlers
//	coalesce.go     small replica writes and presence questions to one peer merged into batches
//	hints.go        hints queued for replicas a write missed
//	objects.go      the /v1/objects handler
//
// The data node builds a Server with New and routes /v1/objects,
// /v1/batch/* and the replica endpoints to it; the repair loops and the
// ref protocol call its exported methods (PutReplica, Presence, ...).
//
// # Caveats
//
// A coordinated write or read runs under the node's lifetime context, not
// the request's: fasthttp recycles a RequestCtx when its handler returns,
// while replica calls past the quorum still run (Deps.Inflight counts
// them, and Close waits for them).
package objects
