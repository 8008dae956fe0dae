package api

import "time"

// Routes served by every data node. {oid} is a 40- or 64-character lowercase
// hex OID.
const (
	PathObjects  = "/v1/objects/"          // PUT, GET, HEAD /v1/objects/{oid}
	PathRing     = "/v1/ring"              // GET: the ring this node uses
	PathCluster  = "/v1/cluster"           // GET: nodes, liveness and the ring
	PathStatus   = "/v1/status"            // GET: this node
	PathHealthz  = "/healthz"              // GET: the process is alive
	PathReadyz   = "/readyz"               // GET: has a ring and a live etcd session
	PathReplicas = "/internal/v1/replica/" // PUT, GET, HEAD: node-to-node, one replica's local copy
)

// Headers.
const (
	// HeaderRingRevision carries the ring revision a coordinator used; a
	// replica holding a newer ring refuses the call with stale_ring. Replies
	// carry the revision the node holds.
	HeaderRingRevision = "X-Stratum-Ring-Revision"
	// HeaderGeneration carries the coordinator's node generation.
	HeaderGeneration = "X-Stratum-Generation"
	// HeaderNode names the node that answered.
	HeaderNode = "X-Stratum-Node"
	// HeaderCreated is "true" on a replica PUT reply that stored a new copy.
	HeaderCreated = "X-Stratum-Created"
)

// QueryConsistency is the query parameter naming the consistency level.
const QueryConsistency = "consistency"

// Receipt is the reply to a successful object PUT.
type Receipt struct {
	OID         string      `json:"oid"`
	Size        int64       `json:"size"`
	Created     bool        `json:"created"`
	Consistency Consistency `json:"consistency"`
	Required    int         `json:"required"`
	// Acked replicas hold a durable copy; Pending ones were still writing
	// when the reply went out (they finish in the background); Failed ones
	// were skipped (DOWN or draining) or refused or timed out.
	Acked        []string `json:"acked"`
	Pending      []string `json:"pending,omitempty"`
	Failed       []string `json:"failed,omitempty"`
	RingRevision int64    `json:"ring_revision"`
	// Degraded is true when the write could not be attempted on all N
	// replicas (one is in Failed) or fewer than N acknowledged once every
	// attempt ended. Pending replicas do not make a write degraded.
	Degraded bool `json:"degraded"`
}

// DeleteReceipt is the reply to DELETE /v1/objects/{oid}: the replicas
// that hold its tombstone. Existed is true when one of them removed a copy
// (a delete of an object never stored is acknowledged too).
type DeleteReceipt struct {
	OID          string      `json:"oid"`
	Deleted      bool        `json:"deleted"`
	Existed      bool        `json:"existed"`
	Consistency  Consistency `json:"consistency"`
	Required     int         `json:"required"`
	Acked        []string    `json:"acked"`
	Failed       []string    `json:"failed,omitempty"`
	RingRevision int64       `json:"ring_revision"`
}

// RingNode is one member of the ring as shown by GET /v1/ring.
type RingNode struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	Zone string `json:"zone,omitempty"`
}

// RingDoc is the reply to GET /v1/ring.
type RingDoc struct {
	Revision          int64      `json:"revision"`
	ReplicationFactor int        `json:"replication_factor"`
	VNodes            int        `json:"vnodes"`
	Nodes             []RingNode `json:"nodes"`
}

// NodeStatus is one node of GET /v1/cluster and GET /v1/admin/nodes.
type NodeStatus struct {
	ID         string      `json:"id"`
	Addr       string      `json:"addr"`
	Zone       string      `json:"zone,omitempty"`
	State      MemberState `json:"state"`
	InRing     bool        `json:"in_ring"`
	Live       bool        `json:"live"`
	Generation string      `json:"generation,omitempty"`
	Drained    bool        `json:"drained,omitempty"`
	// Partitions counts the ref partitions this node is a member of; a
	// node is safe to remove once it is drained and this is 0.
	Partitions int `json:"partitions"`
}

// ClusterDoc is the reply to GET /v1/cluster (version 1).
type ClusterDoc struct {
	Version           int          `json:"version"`
	RingRevision      int64        `json:"ring_revision"`
	ReplicationFactor int          `json:"replication_factor"`
	Nodes             []NodeStatus `json:"nodes"`
	Coordinator       string       `json:"coordinator"`
	// ControlPlane is "ok", or "unreachable" when this node cannot reach
	// etcd and shows its cached view.
	ControlPlane string         `json:"control_plane"`
	Breakers     []BreakerState `json:"breakers,omitempty"`
	// Partitions summarises the ref partitions as this node's view has
	// them; absent before the cluster has any.
	Partitions *PartitionSummary `json:"partitions,omitempty"`
	// Repair is each node's repair and rebalance progress, asked of the
	// nodes with a one-second deadline; a node that did not answer is
	// absent.
	Repair map[string]RepairProgress `json:"repair,omitempty"`
	// AtRisk is what stands between the cluster and lost data.
	AtRisk AtRisk `json:"at_risk"`
}

// AtRisk summarises data at risk: objects or refs with fewer copies than
// they should have, and what is stopping their repair.
type AtRisk struct {
	// NodesNotLive are members without a live registration (stopped,
	// crashed, cut off): their copies do not count until they return.
	NodesNotLive []string `json:"nodes_not_live"`
	// UnderReplicatedPartitions have fewer in-sync members than they should.
	UnderReplicatedPartitions int `json:"under_replicated_partitions"`
	// UnderReplicatedObjects sums, over the nodes that answered, the objects
	// their current or last anti-entropy round found missing and has not
	// copied yet; HintsPending sums their queued hints.
	UnderReplicatedObjects int64 `json:"under_replicated_objects"`
	HintsPending           int   `json:"hints_pending"`
	// RepairPaused is true while repair and rebalancing are paused.
	RepairPaused bool `json:"repair_paused"`
}

// PartitionSummary is the ref partitions at a glance (docs/refs.md).
type PartitionSummary struct {
	Count    int `json:"count"`
	Replicas int `json:"replicas"`
	// Assigned partitions have a record; UnderReplicated ones have fewer
	// in-sync members than Replicas (a member is catching up, or lost).
	Assigned        int `json:"assigned"`
	UnderReplicated int `json:"under_replicated"`
	// Primaries counts the partitions each node is named primary of.
	Primaries map[string]int `json:"primaries"`
	// Serving and Led are this node's: partitions it serves as primary
	// now, and those whose record names it primary.
	Serving int `json:"serving"`
	Led     int `json:"led"`
}

// StatusDoc is the reply to GET /v1/status.
type StatusDoc struct {
	Version      int    `json:"version"`
	ID           string `json:"id"`
	Addr         string `json:"addr"`
	Zone         string `json:"zone,omitempty"`
	Generation   string `json:"generation"`
	RingRevision int64  `json:"ring_revision"`
	Ready        bool   `json:"ready"`
	Fenced       bool   `json:"fenced"`
	ControlPlane string `json:"control_plane"`
	Objects      int64  `json:"objects"`
	Bytes        int64  `json:"bytes"`
	// BodyMemory is the bytes of request bodies this node holds in memory
	// now; it never exceeds the node's configured maximum.
	BodyMemory int64 `json:"body_memory_bytes"`
	// HintsPending is the hinted handoffs this node holds for replicas that
	// missed a write it coordinated; HintsDropped and HintsExpired count,
	// since the process started, hints refused at the per-peer bound and
	// hints that reached their maximum age undelivered.
	HintsPending int   `json:"hints_pending"`
	HintsDropped int64 `json:"hints_dropped"`
	HintsExpired int64 `json:"hints_expired"`
	// AELastRound is when this node last finished an anti-entropy round
	// (absent before the first); AEPushed and AEPulled count, since the
	// process started, objects it copied to peers that lacked them and
	// from peers to itself.
	AELastRound *time.Time `json:"ae_last_round,omitempty"`
	AEPushed    int64      `json:"ae_pushed"`
	AEPulled    int64      `json:"ae_pulled"`
	// Misplaced is how many copies the ring no longer places on this node
	// that it still held after its last shed round (each waits for its new
	// owners to confirm theirs; docs/repair.md, "Rebalancing").
	Misplaced int64 `json:"misplaced"`
	// SettledRevision is the ring revision of this node's last complete
	// shed round that left nothing misplaced (0 if none yet): every copy
	// it held that the ring places elsewhere reached its N owners. Once
	// every node reports the current revision, reads stop asking the
	// owners under earlier rings (docs/consistency.md, "Ring changes").
	SettledRevision int64 `json:"settled_revision,omitempty"`
	// ValueLogBytes is the size of this node's value log (small objects'
	// bytes, appended) and ValueLogLiveBytes the part its index still
	// points at; the collector rewrites segments that are mostly garbage.
	ValueLogBytes     int64 `json:"value_log_bytes"`
	ValueLogLiveBytes int64 `json:"value_log_live_bytes"`
	// DowntimeSeconds is how long this node was away before this process
	// started (from its last-healthy record; 0 on a first start), and
	// RecoveredAt when the priority repair round that followed finished
	// (absent until then, or when there was nothing to recover from).
	DowntimeSeconds float64    `json:"downtime_seconds"`
	RecoveredAt     *time.Time `json:"recovered_at,omitempty"`
	// LastScrub is when the last complete scrub pass ended (absent before
	// the first; the first comes one ScrubInterval after the start).
	LastScrub *time.Time `json:"last_scrub,omitempty"`
	// Repair is the progress of the current (or last) anti-entropy round,
	// which is also how objects move after a ring change.
	Repair RepairProgress `json:"repair"`
}

// RepairProgress is one node's repair and rebalance progress: the
// anti-entropy round running now if it has found work, else the last round
// that did (Running false). Found counts the objects the round found missing
// on one side (it grows as the round compares more buckets), Copied those
// it copied; Rate is objects/s since the round began and ETASeconds
// Remaining/Rate. Paused is the cluster-wide pause.
type RepairProgress struct {
	Paused     bool       `json:"paused"`
	Running    bool       `json:"running"`
	Started    *time.Time `json:"started,omitempty"`
	Found      int64      `json:"found"`
	Copied     int64      `json:"copied"`
	Remaining  int64      `json:"remaining"`
	Rate       float64    `json:"rate"`
	ETASeconds float64    `json:"eta_seconds"`
}
