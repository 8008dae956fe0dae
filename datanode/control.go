package datanode

import (
	"context"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// ControlPlane is what a node needs from the control plane. controlplane.Client
// satisfies it through a small adapter in package cli (which also translates
// its errors into api sentinels); tests may use a fake.
type ControlPlane interface {
	// Register publishes self as a new process of this generation (member
	// state JOINING), held by a lease of ttl. It waits while another live
	// generation holds the ID.
	Register(ctx context.Context, self ring.Node, generation string, ttl time.Duration) (Lease, error)
	// Reregister renews a lost lease for the same generation; it fails with
	// an error wrapping api.ErrStaleGeneration if the generation is fenced.
	Reregister(ctx context.Context, self ring.Node, generation string, ttl time.Duration) (Lease, error)
	// MarkActive moves this generation's member from JOINING to ACTIVE.
	MarkActive(ctx context.Context, id, generation string) error
	// MarkDrained records that a DRAINING member's objects are safe elsewhere.
	MarkDrained(ctx context.Context, id, generation string) error
	// JoinRing adds self to the ring (creating it with cfg if there is none).
	JoinRing(ctx context.Context, self ring.Node, cfg ring.Config) error
	// LoadRing reads the current ring.
	LoadRing(ctx context.Context) (*ring.Ring, error)
	// WatchRing calls publish with every new ring until ctx is done.
	WatchRing(ctx context.Context, publish func(*ring.Ring)) error
	// Member reads one member record (a linearizable read).
	Member(ctx context.Context, id string) (api.Member, bool, error)
	// WatchMembers calls publish with the full member map on every change.
	WatchMembers(ctx context.Context, publish func(map[string]api.Member)) error
	// NodeList joins ring, member and lease records for status and admin.
	NodeList(ctx context.Context) ([]api.NodeStatus, error)
	// Drain marks a node DRAINING; Remove takes it out of the cluster,
	// refusing an unsafe removal unless force.
	Drain(ctx context.Context, id string) error
	Remove(ctx context.Context, id string, force bool) error

	// PartitionConfig reads the partition configuration (ok false before
	// the cluster has one).
	PartitionConfig(ctx context.Context) (cfg api.PartitionConfig, ok bool, err error)
	// WatchPartitions calls publish with every partition record on every
	// change, until ctx is done.
	WatchPartitions(ctx context.Context, publish func(map[int]api.Partition)) error
	// UpdatePartition writes next if the record is still at epoch and
	// returns the new epoch; a failed condition wraps api.ErrStaleEpoch.
	UpdatePartition(ctx context.Context, epoch int64, next api.Partition) (int64, error)
	// DropDownFromInSync writes next (without node in in_sync) only if node
	// is DOWN or removed and has no live lease.
	DropDownFromInSync(ctx context.Context, epoch int64, next api.Partition, node string) (int64, error)
	// PlanPartitions computes, without applying, the planner's next round.
	PlanPartitions(ctx context.Context) ([]api.PartitionAction, error)
	// SetRepairPaused pauses or resumes repair and rebalancing
	// cluster-wide; WatchRepairPaused follows that state.
	SetRepairPaused(ctx context.Context, paused bool) error
	WatchRepairPaused(ctx context.Context, publish func(bool)) error

	// WatchTokens calls publish with every API token record, keyed by id,
	// now and on every change (Config.Auth).
	WatchTokens(ctx context.Context, publish func(map[string]api.Token)) error
	// ClusterSecret returns the secret nodes present to each other when
	// auth is on and TLS is off, creating it on first use.
	ClusterSecret(ctx context.Context) (string, error)
}

// Lease is a node's registration in the control plane.
type Lease interface {
	// Done is closed when the lease is lost or released.
	Done() <-chan struct{}
	// Close releases the lease, deleting the registration.
	Close(ctx context.Context) error
	// ValidUntil is the earliest time etcd may expire the lease: the send
	// time of its last successful renewal plus the TTL (monotonic clock).
	ValidUntil() time.Time
}
