package api

// Anti-entropy routes (node to node). Two replicas compare, per bucket of
// OIDs (the OID's first byte, 256 buckets), a digest of the OIDs the ring
// places on both of them, then list the buckets that differ.
const (
	PathAEDigest = "/internal/v1/ae-digest" // POST AEDigestRequest -> AEDigestReply
	PathAEList   = "/internal/v1/ae-list"   // POST AEListRequest -> AEListReply
)

// AEBuckets is the number of anti-entropy buckets: one per first OID byte.
const AEBuckets = 256

// AEDigestRequest asks a replica for the digests of the OIDs it holds that
// the ring places on both it and Peer (the caller). RingRevision must equal
// the callee's, or the call is refused with stale_ring.
type AEDigestRequest struct {
	Peer         string `json:"peer"`
	RingRevision int64  `json:"ring_revision"`
}

// AEBucket is one bucket's digest: the XOR of SHA-256 of each OID's hex
// string (order-independent), hex-encoded, and the number of OIDs.
type AEBucket struct {
	Count  int    `json:"count"`
	Digest string `json:"digest"`
}

// AEDigestReply holds AEBuckets digests, bucket b at index b.
type AEDigestReply struct {
	RingRevision int64      `json:"ring_revision"`
	Buckets      []AEBucket `json:"buckets"`
}

// AEListRequest asks for the shared OIDs of some buckets (at most
// AEBuckets), a page at a time: the entries whose OID sorts after After
// ("" from the start), at most Limit of them (0, or more than
// AEListMaxPage, means AEListMaxPage).
type AEListRequest struct {
	Peer         string `json:"peer"`
	RingRevision int64  `json:"ring_revision"`
	Buckets      []int  `json:"buckets"`
	After        string `json:"after,omitempty"`
	Limit        int    `json:"limit,omitempty"`
}

// AEListMaxPage is the most entries one AEListReply carries, so a reply's
// size does not grow with the store.
const AEListMaxPage = 4096

// AEListReply lists, in OID order, the callee's entries of the buckets that
// both should hold: its copies, and its tombstones (Deleted), each with its
// stamp. Digests count copies only; tombstones are listed so that a copy on
// one side and a newer tombstone on the other resolve to the tombstone.
// More says the page is full and entries after the last one may follow:
// ask again with After set to the last OID.
type AEListReply struct {
	Entries []AEEntry `json:"entries"`
	More    bool      `json:"more,omitempty"`
}

// AEEntry is one OID of an AEListReply.
type AEEntry struct {
	OID     string `json:"oid"`
	Stamp   Stamp  `json:"stamp,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
}

// Tombstone routes (node to node): apply tombstones to a replica.
const PathReplicaDelete = "/internal/v1/replica-delete" // POST ReplicaDeleteRequest -> []ReplicaBatchResult

// ReplicaDeleteRequest carries tombstones to apply, each only over an
// older stamp.
type ReplicaDeleteRequest struct {
	Entries []AEEntry `json:"entries"`
}
