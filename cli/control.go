package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/controlplane"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/ring"
)

// controlAdapter lets a controlplane.Client serve as a datanode.ControlPlane
// (the two packages do not import each other) and translates its sentinel
// errors into the api's, once, at this boundary.
type controlAdapter struct{ c *controlplane.Client }

var _ datanode.ControlPlane = controlAdapter{}

// NewControlPlane wraps a controlplane client for data nodes. Tests use it
// to build clusters in one process.
func NewControlPlane(c *controlplane.Client) datanode.ControlPlane { return controlAdapter{c} }

func translate(err error) error {
	if controlplane.IsPermissionDenied(err) {
		return fmt.Errorf("%w: this node's etcd credentials may not change that record; run the command with --etcd and the control plane's credentials (docs/security.md, etcd access): %v",
			api.ErrForbidden, err)
	}
	for _, m := range []struct{ from, to error }{
		{controlplane.ErrFenced, api.ErrStaleGeneration},
		{controlplane.ErrUnknownNode, api.ErrUnknownNode},
		{controlplane.ErrUnsafe, api.ErrUnsafe},
		{controlplane.ErrBadState, api.ErrBadState},
	} {
		if errors.Is(err, m.from) {
			return fmt.Errorf("%w: %v", m.to, err)
		}
	}
	return err
}

func lease(l *controlplane.Lease, err error) (datanode.Lease, error) {
	if err != nil {
		return nil, translate(err)
	}
	return l, nil
}

func (a controlAdapter) Register(ctx context.Context, self ring.Node, gen string, ttl time.Duration) (datanode.Lease, error) {
	return lease(a.c.Register(ctx, self, gen, ttl))
}

func (a controlAdapter) Reregister(ctx context.Context, self ring.Node, gen string, ttl time.Duration) (datanode.Lease, error) {
	return lease(a.c.Reregister(ctx, self, gen, ttl))
}

func (a controlAdapter) MarkActive(ctx context.Context, id, gen string) error {
	return translate(a.c.MarkActive(ctx, id, gen))
}

func (a controlAdapter) MarkDrained(ctx context.Context, id, gen string) error {
	return translate(a.c.MarkDrained(ctx, id, gen))
}

func (a controlAdapter) JoinRing(ctx context.Context, self ring.Node, cfg ring.Config) error {
	return a.c.JoinRing(ctx, self, cfg)
}

func (a controlAdapter) LoadRing(ctx context.Context) (*ring.Ring, error) { return a.c.LoadRing(ctx) }

func (a controlAdapter) WatchRing(ctx context.Context, publish func(*ring.Ring)) error {
	return a.c.WatchRing(ctx, publish)
}

func (a controlAdapter) Member(ctx context.Context, id string) (api.Member, bool, error) {
	return a.c.Member(ctx, id)
}

func (a controlAdapter) WatchMembers(ctx context.Context, publish func(map[string]api.Member)) error {
	return a.c.WatchMembers(ctx, publish)
}

func (a controlAdapter) NodeList(ctx context.Context) ([]api.NodeStatus, error) {
	return a.c.NodeList(ctx)
}

func (a controlAdapter) Drain(ctx context.Context, id string) error {
	return translate(a.c.Drain(ctx, id))
}

func (a controlAdapter) Remove(ctx context.Context, id string, force bool) error {
	return translate(a.c.Remove(ctx, id, force))
}

func (a controlAdapter) PartitionConfig(ctx context.Context) (api.PartitionConfig, bool, error) {
	return a.c.PartitionConfig(ctx)
}

func (a controlAdapter) WatchPartitions(ctx context.Context, publish func(map[int]api.Partition)) error {
	return a.c.WatchPartitions(ctx, publish)
}

func (a controlAdapter) UpdatePartition(ctx context.Context, epoch int64, next api.Partition) (int64, error) {
	return a.c.UpdatePartition(ctx, epoch, next)
}

func (a controlAdapter) DropDownFromInSync(ctx context.Context, epoch int64, next api.Partition, node string) (int64, error) {
	e, err := a.c.DropDownFromInSync(ctx, epoch, next, node)
	return e, translate(err)
}

func (a controlAdapter) PlanPartitions(ctx context.Context) ([]api.PartitionAction, error) {
	actions, err := a.c.PlanPartitions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.PartitionAction, len(actions))
	for i, x := range actions {
		out[i] = api.PartitionAction{Kind: string(x.Kind), Partition: x.Partition, Epoch: x.Epoch,
			Node: x.Node, From: x.From, Reason: x.Reason, Next: x.Next}
	}
	return out, nil
}

func (a controlAdapter) SetRepairPaused(ctx context.Context, paused bool) error {
	return translate(a.c.SetRepairPaused(ctx, paused))
}

func (a controlAdapter) WatchRepairPaused(ctx context.Context, publish func(bool)) error {
	return a.c.WatchRepairPaused(ctx, publish)
}

func (a controlAdapter) WatchTokens(ctx context.Context, publish func(map[string]api.Token)) error {
	return a.c.WatchTokens(ctx, publish)
}

func (a controlAdapter) ClusterSecret(ctx context.Context) (string, error) {
	return a.c.ClusterSecret(ctx)
}

// BadRecords forwards the control-plane client's count of skipped records
// (datanode.BadRecordSource), so every node exports it as a metric.
func (a controlAdapter) BadRecords() map[string]uint64 { return a.c.BadRecords() }
