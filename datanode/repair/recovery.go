package repair

import (
	"context"
	"path/filepath"
	"time"

	"github.com/stratum-store/stratum/datanode/downtime"
	"github.com/stratum-store/stratum/internal/retry"
)

// Downtime recovery (docs/architecture.md): a ready node records every
// HealthyMarkInterval, atomically, that it is healthy. When a process
// starts and finds a record, the time since is how long the node was away:
// objects written meanwhile may be missing here. Before ordinary
// anti-entropy (whose first round comes one interval later) it runs one
// anti-entropy round with every peer at once, pulling what it lacks of the
// ranges it owns. Turning anti-entropy off (AntiEntropyInterval 0) turns
// this round off too.

func (n *Server) healthyMark() downtime.Mark {
	return downtime.Mark{Path: filepath.Join(n.cfg.Store.Dir, "healthy")}
}

// RecoveryLoop measures the downtime, runs the priority repair round when
// there was one, then keeps the healthy record fresh until ctx is done.
func (n *Server) RecoveryLoop(ctx context.Context) {
	mark := n.healthyMark()
	away, err := mark.Away(time.Now())
	if err != nil {
		n.logger.Warn("downtime record unreadable; treating this start as a return from downtime", "err", err)
	}
	n.downtime.Store(int64(away))
	if (away > 0 || err != nil) && n.cfg.AntiEntropyInterval > 0 {
		n.logger.Info("back from downtime: repairing before ordinary anti-entropy", "away", away.Round(time.Second))
		// Until a round has gone through every peer, try again each second,
		// for a minute at most; ordinary anti-entropy takes over after that.
		done := n.antiEntropyRound(ctx)
		for try := 1; !done && try < 60 && ctx.Err() == nil; try++ {
			retry.Sleep(ctx, time.Second)
			done = n.antiEntropyRound(ctx)
		}
		if done {
			n.recoveredAt.Store(time.Now().UnixNano())
			n.logger.Info("downtime recovery round done", "pulled", n.aePulled.Load())
		} else if ctx.Err() == nil {
			n.logger.Warn("downtime recovery did not complete within a minute; ordinary anti-entropy continues")
		}
	}
	t := time.NewTicker(n.cfg.HealthyMarkInterval)
	defer t.Stop()
	for {
		if n.d.Ready() && n.d.LeaseValid() {
			if err := mark.Write(time.Now()); err != nil {
				n.logger.Warn("could not record health", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
