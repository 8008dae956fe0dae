// Package refs is a data node's part in the ref protocol of docs/refs.md:
// repositories are hashed to partitions; each partition has a primary,
// named by its record in etcd, that runs every compare-and-swap
// transaction and replicates it to the partition's in-sync replicas
// before it answers. The record's epoch fences everything: a replica
// refuses a message of an older epoch than it has seen, and a primary
// serves only while its record, its takeover and its lease agree.
//
// A Server holds the partition records it knows, the epochs it has taken
// over, and the ref store (datanode/refstore). Its files follow the
// protocol's parts:
//
//	refs.go     the partition states, readiness and reports
//	primary.go  transactions, takeover, catch-up and the primary loop
//	replica.go  the replica's side: begin, apply, snapshot, install
//	routes.go   /v1/repos on any node (served by the primary, forwarded by the others)
//
// The data node builds a Server with Open, runs its Watch and PrimaryLoop
// goroutines, and routes /v1/repos, /internal/v1/refs/ and
// /v1/partitions/plan to it. Everything else it needs from the node comes
// through Deps.
//
// # Caveats
//
// A transaction's new objects must be stored at quorum before it is
// applied (Deps.Stored), unless the caller asks otherwise: a ref must
// never point at an object a read could miss.
package refs
