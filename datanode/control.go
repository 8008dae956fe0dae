package datanode

import (
	"context"
	"time"

	"github.com/stratum-store/stratum/ring"
)

// ControlPlane is what a node needs from the control plane. controlplane.Client
// satisfies it through a small adapter in package cli; tests may use a fake.
type ControlPlane interface {
	// Register publishes self as live with this generation, held by a lease
	// of ttl. It waits while another live generation holds the ID.
	Register(ctx context.Context, self ring.Node, generation string, ttl time.Duration) (Lease, error)
	// JoinRing adds self to the ring (creating it with cfg if there is none).
	JoinRing(ctx context.Context, self ring.Node, cfg ring.Config) error
	// LoadRing reads the current ring.
	LoadRing(ctx context.Context) (*ring.Ring, error)
	// WatchRing calls publish with every new ring until ctx is done.
	WatchRing(ctx context.Context, publish func(*ring.Ring)) error
	// LiveNodes returns the generation of every live node, keyed by ID.
	LiveNodes(ctx context.Context) (map[string]string, error)
}

// Lease is a node's registration in the control plane.
type Lease interface {
	// Done is closed when the lease is lost or released.
	Done() <-chan struct{}
	// Close releases the lease, deleting the registration.
	Close(ctx context.Context) error
}
