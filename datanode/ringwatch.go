package datanode

import (
	"context"
	"time"

	"github.com/stratum-store/stratum/ring"
)

// publishRing swaps in r if it is newer than the ring in use. Readers load
// the pointer once per request and never see a partly built ring.
func (n *Node) publishRing(r *ring.Ring) {
	for {
		cur := n.ring.Load()
		if cur != nil && cur.Revision() >= r.Revision() {
			return
		}
		if n.ring.CompareAndSwap(cur, r) {
			n.logger.Info("ring published", "revision", r.Revision(), "nodes", r.Len())
			return
		}
	}
}

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
		l := n.lease.Load()
		select {
		case <-ctx.Done():
			return
		case <-(*l).Done():
		}
		n.logger.Warn("registration lease lost; re-registering")
		for ctx.Err() == nil {
			if err := n.register(ctx); err == nil {
				break
			} else {
				n.logger.Warn("re-registration failed", "err", err)
			}
			sleepCtx(ctx, time.Second)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
