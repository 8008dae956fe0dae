package api

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/stratum-store/stratum/api/refdata"
)

// Ref routes. {repo} may contain '/' and is followed by the literal segment
// "/refs"; see docs/refs.md for how paths are split.
const (
	PathRepos = "/v1/repos/" // GET  /v1/repos/{repo}/refs[?prefix=&after=&limit=]
	//                          GET  /v1/repos/{repo}/refs/{refname}
	//                          POST /v1/repos/{repo}/refs   (a transaction)
	PathPartitions    = "/v1/partitions"      // GET: assignments, epochs and lag
	PathPartitionPlan = "/v1/partitions/plan" // GET: the planner round that would run now

	// Internal, node to node: the replication protocol of docs/refs.md.
	PathRefBegin    = "/internal/v1/refs/begin"    // POST RefBeginRequest -> RefVersion
	PathRefApply    = "/internal/v1/refs/apply"    // POST RefApplyRequest
	PathRefSnapshot = "/internal/v1/refs/snapshot" // GET ?partition=&epoch= -> RefSnapshot
	PathRefInstall  = "/internal/v1/refs/install"  // POST RefInstallRequest

	// HeaderForwarded marks a ref request a node forwarded to the primary it
	// believes in; the receiver never forwards it again.
	HeaderForwarded = "X-Stratum-Forwarded"
)

// Default partition settings, fixed when a cluster is created.
const (
	DefaultPartitionCount    = 256
	DefaultPartitionReplicas = 3
	// MaxRefUpdates bounds the updates in one transaction.
	MaxRefUpdates = 1000
	// MaxRefListLimit bounds one page of a ref listing.
	MaxRefListLimit = 10000
)

// PartitionOf maps a repository name to its partition: the first 8 bytes of
// SHA-256(repo), big-endian, modulo count. Like ring placement it is part of
// the on-disk contract: changing it would strand every ref.
func PartitionOf(repo string, count int) int {
	sum := sha256.Sum256([]byte(repo))
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(count))
}

// PartitionConfig is the cluster-wide partition setup, written once.
type PartitionConfig struct {
	Count    int `json:"count"`
	Replicas int `json:"replicas"`
}

// Partition is one partition's assignment as etcd records it. Epoch is the
// etcd ModRevision of the record: every change makes a new, larger epoch, and
// the epoch is the partition's fencing token.
type Partition struct {
	ID      int    `json:"id"`
	Epoch   int64  `json:"epoch"`
	Primary string `json:"primary"`
	// Replicas are every member of the partition, the primary included.
	Replicas []string `json:"replicas"`
	// InSync are the members known to hold every acknowledged transaction;
	// a transaction is acknowledged only when all of them have it durably.
	// Only the primary adds to it (after a catch-up, under its partition
	// lock); everyone else only removes.
	InSync []string `json:"in_sync"`
	// Stores maps in-sync members to the ID of the ref store they held
	// when they were last known in sync. A member that answers with
	// another ID lost its disk (a wiped or replaced data directory): it is
	// not in sync, whatever the record says (docs/refs.md, Takeover).
	Stores map[string]string `json:"stores,omitempty"`
}

// PruneStores drops Stores entries of nodes no longer in InSync; a record
// built by changing InSync calls it so no stale identity survives. It
// replaces Stores with a fresh map and never edits the old one: a record
// built as a shallow copy shares its map with a published record, which
// others read without a lock (published records are immutable).
func (p *Partition) PruneStores() {
	if p.Stores == nil {
		return
	}
	kept := make(map[string]string, len(p.Stores))
	for id, store := range p.Stores {
		if p.IsInSync(id) {
			kept[id] = store
		}
	}
	p.Stores = kept
}

// Has reports whether id is one of the partition's replicas.
func (p Partition) Has(id string) bool { return contains(p.Replicas, id) }

// IsInSync reports whether id is in the in-sync set.
func (p Partition) IsInSync(id string) bool { return contains(p.InSync, id) }

// WithoutID returns the member list without id, as a new slice: records
// are published whole and never edited (a shallow copy shares its lists),
// and an empty result is [] rather than nil, so a record lists no member
// as "[]", never "null". The planner and a partition's primary both build
// the next record's Replicas and InSync with it.
func WithoutID(list []string, id string) []string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

func contains(list []string, id string) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}

// RefUpdate is one update of a transaction: set Name from Old to New. An
// all-zero Old means "must not exist"; an all-zero New deletes the ref.
type RefUpdate struct {
	Name string `json:"name"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// RefTxn is the body of POST /v1/repos/{repo}/refs.
type RefTxn struct {
	Updates []RefUpdate `json:"updates"`
}

// RefTxnResult answers a transaction: on 200 the refs' new values (a deleted
// ref has the zero OID); on 409 (code "ref_conflict") the current values of
// the refs whose Old did not match.
type RefTxnResult struct {
	Repo      string `json:"repo"`
	Partition int    `json:"partition"`
	Epoch     int64  `json:"epoch"`
	Refs      []Ref  `json:"refs"`
}

// RefConflict is the body of a 409 ref_conflict answer: the JSON error and,
// in refs, the current values of the refs whose old value did not match.
type RefConflict struct {
	Error ErrorDetail `json:"error"`
	RefTxnResult
}

// RefList is one page of a listing; Next, when set, is the after= value of
// the next page.
type RefList struct {
	Repo string `json:"repo"`
	Refs []Ref  `json:"refs"`
	Next string `json:"next,omitempty"`
}

// The ref data model lives in the leaf package refdata (the ref store
// needs it without the wire contract); the wire contract re-exports it.
type (
	// Ref is one ref and the OID it points at.
	Ref = refdata.Ref
	// RefVersion orders the states of one partition's replica.
	RefVersion = refdata.Version
	// RefChange is one ref's new value inside a replicated transaction.
	RefChange = refdata.Change
	// RefSnapshot is a partition's whole state on one replica.
	RefSnapshot = refdata.Snapshot
)

// ZeroOID is the SHA-1 length zero OID, as Git writes it.
const ZeroOID = refdata.ZeroOID

// IsZeroOID reports whether s is an all-zero object ID.
func IsZeroOID(s string) bool { return refdata.IsZeroOID(s) }

// RefTxnID is the identity of a replicated transaction (refdata.TxnID).
func RefTxnID(changes []RefChange) string { return refdata.TxnID(changes) }

// RefReplicaState is a replica's answer to begin and install: its version
// of the partition and the ID of its ref store.
type RefReplicaState struct {
	Version RefVersion `json:"version"`
	Store   string     `json:"store"`
}

// RefBeginRequest asks a replica to refuse everything older than Epoch.
type RefBeginRequest struct {
	Partition int   `json:"partition"`
	Epoch     int64 `json:"epoch"`
}

// RefApplyRequest replicates one committed-to-be transaction. The replica
// takes RefTxnID(Changes) as its identity: the same (Epoch, Seq) with other
// changes is refused (out_of_sync), never taken for a retry.
type RefApplyRequest struct {
	Partition int         `json:"partition"`
	Epoch     int64       `json:"epoch"`
	Seq       uint64      `json:"seq"`
	Changes   []RefChange `json:"changes"`
}

// RefInstallRequest replaces a replica's partition state with Snapshot,
// fenced by Epoch.
type RefInstallRequest struct {
	Epoch    int64       `json:"epoch"`
	Snapshot RefSnapshot `json:"snapshot"`
}

// PartitionStatus is one partition as a node reports it on
// GET /v1/partitions: the newest record it knows and its own replica state.
type PartitionStatus struct {
	Partition
	// Serving is true when this node is the primary and serving now.
	Serving bool `json:"serving"`
	// Version and Floor are this node's local replica state.
	Version RefVersion `json:"version"`
	Floor   int64      `json:"floor"`
}

// PartitionReport is the body of GET /v1/partitions.
type PartitionReport struct {
	Node       string            `json:"node"`
	Config     *PartitionConfig  `json:"config"`
	Partitions []PartitionStatus `json:"partitions"`
}

// PartitionAction is one action of the partition planner, as
// GET /v1/partitions/plan reports it (docs/refs.md, Planner).
type PartitionAction struct {
	// Kind is create, promote, add_replica, remove_replica or move_primary.
	Kind      string `json:"kind"`
	Partition int    `json:"partition"`
	// Epoch is the epoch the action was planned from (0 for create).
	Epoch  int64     `json:"epoch"`
	Node   string    `json:"node,omitempty"`
	From   string    `json:"from,omitempty"`
	Reason string    `json:"reason"`
	Next   Partition `json:"next"`
}
