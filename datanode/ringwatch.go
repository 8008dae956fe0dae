package datanode

import (
	"context"
	"errors"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/internal/retry"
)

// watchRing follows ring changes until ctx is done. A request to refresh
// (a peer reported a newer ring) triggers an immediate reload as well.
func (n *Node) watchRing(ctx context.Context) {
	n.goLoop(func() { n.cfg.Control.WatchRing(ctx, n.publishRing) })
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.refresh:
			n.reloadRing(ctx)
		}
	}
}

func (n *Node) reloadRing(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := n.cfg.Control.LoadRing(rctx)
	if err != nil {
		n.logger.Warn("ring reload failed", "err", err)
		return
	}
	n.publishRing(r)
}

// requestRefresh asks watchRing to reload the ring soon; it never blocks.
func (n *Node) requestRefresh() {
	select {
	case n.refresh <- struct{}{}:
	default:
	}
}

// keepRegistered re-registers, with the same generation, whenever the lease
// is lost (etcd unreachable longer than the TTL), until ctx is done.
func (n *Node) keepRegistered(ctx context.Context) {
	for {
		r := n.reg.Load()
		select {
		case <-ctx.Done():
			return
		case <-r.lease.Done():
		}
		if ctx.Err() != nil {
			return
		}
		n.logger.Warn("registration lease lost; re-registering")
		for ctx.Err() == nil {
			err := n.reregister(ctx)
			if err == nil {
				break
			}
			if errors.Is(err, api.ErrStaleGeneration) {
				n.fence(err.Error())
				return
			}
			n.logger.Warn("re-registration failed", "err", err)
			retry.Sleep(ctx, time.Second)
		}
	}
}

func (n *Node) reregister(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, n.cfg.RegisterTimeout)
	defer cancel()
	l, err := n.cfg.Control.Reregister(rctx, n.self, n.generation, n.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	n.setLease(l) // a new registration: every partition must be taken over again
	n.refs.Wake()
	return nil
}
