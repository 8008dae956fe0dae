// Package datanode is one stratum data node: a fasthttp server that stores
// replicas in a local store and coordinates client requests for the whole
// cluster.
//
// Any node coordinates any request. For an object it looks up the replica
// set on the current ring, fans the request out to every replica in parallel
// (itself directly, the others over keep-alive HTTP), and answers as soon as
// the consistency level the client asked for is met:
//
//	PUT  one | quorum | all  ->  1 | N/2+1 | N replicas acknowledged a durable copy
//	GET  one | quorum | all  ->  1 | N/2+1 | N replicas answered definitively
//
// Replica writes still in flight when the coordinator answers finish in the
// background, each bounded by its peer deadline. Every replica call carries
// the coordinator's ring revision; a replica that holds a newer ring refuses
// it (409 stale_ring), the coordinator reloads the ring and retries (at most
// Config.StaleRetries times).
//
// The node learns the ring through a ControlPlane (satisfied by
// controlplane.Client, or a fake in tests): it registers itself with a lease,
// joins the ring, and follows ring changes, publishing each new immutable
// ring through an atomic pointer. Requests read that pointer once and use one
// ring throughout, so they never see a half-built ring.
//
//	n, err := datanode.New(cfg) // cfg.Control, cfg.Store.Dir, cfg.ID, cfg.ListenAddr ...
//	if err := n.Start(ctx); err != nil { ... }
//	defer n.Close(context.Background())
//
// # Parts
//
// The root wires four parts, each in its own package behind one type built
// from a Config and Deps, and owns every goroutine they run:
//
//	objects  the object protocol, coordinator and replica sides
//	refs     the ref protocol: partitions, primary, replica side
//	repair   anti-entropy, scrub, shed, drain, hint delivery, the pause
//	httpapi  the route table and router, auth, the node's own routes, Git
//
// and keeps the configuration, the registration and lease, and the view
// of ring and members (view.go, ringwatch.go) that every part reads.
//
// # Locks
//
// Every mutex in the node is taken alone, never while holding another:
// the peer map (peer), each circuit breaker (breaker), the view writers
// (view.go; readers use an atomic pointer), the batchers' queues of
// replica writes and presence questions (objects/coalesce.go), the
// in-flight tracker (inflight), the recent-errors
// list (httpapi/ui.go) and the ref partition map (refs). None but one is
// held during I/O: a ref partition's lock is held for a whole transaction,
// takeover or catch-up, so that they never interleave (docs/refs.md). So
// there is no lock order to get wrong. The store's one multi-lock path,
// PutBatch, takes its stripes in ascending order.
//
// # Caveats
//
// A GET takes the object's bytes from one replica (its own copy first) and
// only presence from the others, and answers with a copy that verifies
// against its OID once enough replicas answered; large objects are spooled
// to an unlinked temporary file while they are verified, so a reply never
// carries unverified bytes. A 404 is only given after every readable
// replica was asked.
package datanode
