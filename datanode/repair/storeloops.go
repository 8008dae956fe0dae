package repair

// The store's housekeeping loops, each run by Start and stopped with the
// node's lifetime context: tombstones expire by the node's running time
// (stampclock), not the wall clock, and the value log is collected on a
// fixed interval.

import (
	"context"

	"github.com/stratum-store/stratum/internal/retry"
)

// TombstoneLoop records the running time and expires the tombstones older
// than TombstoneGrace, every HealthyMarkInterval.
func (n *Server) TombstoneLoop(ctx context.Context) {
	retry.Every(ctx, n.cfg.HealthyMarkInterval, func() {
		if err := n.clock.Save(); err != nil {
			n.logger.Warn("could not record running time", "err", err)
		}
		before := n.clock.Running() - n.cfg.TombstoneGrace.Milliseconds()
		if before <= 0 {
			return
		}
		k, err := n.store.ExpireTombstones(ctx, before)
		if k > 0 || err != nil {
			n.logger.Info("tombstones expired", "count", k, "err", err)
		}
		n.metrics.TombstonesExpired.Add(float64(k))
	})
}

// ValueLogLoop collects the store's value log every ValueLogGCInterval.
func (n *Server) ValueLogLoop(ctx context.Context) {
	if n.cfg.ValueLogGCInterval == 0 {
		return
	}
	retry.Every(ctx, n.cfg.ValueLogGCInterval, func() {
		freed, err := n.store.CollectValueLog(ctx)
		if freed > 0 || (err != nil && ctx.Err() == nil) {
			n.logger.Info("value log collected", "freed_bytes", freed, "err", err)
		}
		n.metrics.ValueLogFreed.Add(float64(freed))
	})
}
