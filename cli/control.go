package cli

import (
	"context"
	"time"

	"github.com/stratum-store/stratum/controlplane"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/ring"
)

// controlAdapter lets a controlplane.Client serve as a datanode.ControlPlane;
// the two packages do not import each other.
type controlAdapter struct{ c *controlplane.Client }

var _ datanode.ControlPlane = controlAdapter{}

func (a controlAdapter) Register(ctx context.Context, self ring.Node, gen string, ttl time.Duration) (datanode.Lease, error) {
	l, err := a.c.Register(ctx, self, gen, ttl)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (a controlAdapter) JoinRing(ctx context.Context, self ring.Node, cfg ring.Config) error {
	return a.c.JoinRing(ctx, self, cfg)
}

func (a controlAdapter) LoadRing(ctx context.Context) (*ring.Ring, error) { return a.c.LoadRing(ctx) }

func (a controlAdapter) WatchRing(ctx context.Context, publish func(*ring.Ring)) error {
	return a.c.WatchRing(ctx, publish)
}

func (a controlAdapter) LiveNodes(ctx context.Context) (map[string]string, error) {
	recs, err := a.c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(recs))
	for id, r := range recs {
		out[id] = r.Generation
	}
	return out, nil
}

// NewControlPlane wraps a controlplane client for data nodes. Tests use it to
// build clusters in one process.
func NewControlPlane(c *controlplane.Client) datanode.ControlPlane { return controlAdapter{c} }
