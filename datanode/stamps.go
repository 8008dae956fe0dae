package datanode

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/downtime"
)

// stampClock issues the stamps of writes and deletes (api.Stamp): a hybrid
// logical clock whose physical part is Config.Clock in milliseconds. Each
// stamp is above every stamp issued or observed before, so a delete that
// follows a write this node saw (or the other way round) always carries
// the higher stamp, whatever the wall clock does.
//
// It also keeps the node's running time, the clock tombstones age by: the
// monotonic time since start plus what earlier runs recorded in
// <data-dir>/runtime. A wall-clock jump moves neither that nor the order
// of stamps this node issues after seeing a stamp.
type stampClock struct {
	wall    func() time.Time
	mu      sync.Mutex // guards last and clamped; never held with another lock
	last    api.Stamp
	clamped int64        // stamps observe held back to maxStampLead
	logger  *slog.Logger // if set, told of each stamp held back
	start   time.Time    // monotonic reading at Start
	base    time.Duration
	mark    downtime.Mark
}

func newStampClock(wall func() time.Time, dir string) *stampClock {
	if wall == nil {
		wall = time.Now
	}
	c := &stampClock{wall: wall, start: time.Now(), mark: downtime.Mark{Path: filepath.Join(dir, "runtime")}}
	if t, ok, err := c.mark.Read(); err == nil && ok {
		c.base = time.Duration(t.UnixNano())
	}
	return c
}

// now returns a new stamp, above every earlier one.
func (c *stampClock) now() api.Stamp {
	phys := wallStamp(c.wall())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(c.last+1, phys)
	return c.last
}

// maxStampLead bounds how far ahead of this node's wall clock an observed
// stamp can move the clock. A peer whose clock (or a stamp on disk) is
// further ahead would otherwise lift every later stamp of this node, for
// good, and near the top of the range make the counter wrap. Past the
// bound the clock moves only to the bound: a write or delete that must go
// above such a stamp is refused (409 superseded, or 503 once the retry
// fails too) until the wall clock is within the bound of it. Clock skews
// within an hour behave as before.
const maxStampLead = time.Hour

// observe moves the clock past a stamp seen from another node, at most
// maxStampLead ahead of the wall clock; it reports false when it clamped s.
func (c *stampClock) observe(s api.Stamp) bool {
	limit := wallStamp(c.wall().Add(maxStampLead))
	c.mu.Lock()
	c.last = max(c.last, min(s, limit))
	if s <= limit {
		c.mu.Unlock()
		return true
	}
	c.clamped++
	c.mu.Unlock()
	if c.logger != nil {
		c.logger.Warn("a stamp too far ahead of this node's clock: the clock follows it only to the bound",
			"stamp", s, "ahead", time.Duration(s>>16-limit>>16)*time.Millisecond+maxStampLead, "bound", maxStampLead)
	}
	return false
}

// wallStamp is the first stamp of wall-clock time t (the counter at 0).
func wallStamp(t time.Time) api.Stamp {
	return api.Stamp(max(t.UnixMilli(), 0)) << 16
}

// running returns the node's running time in milliseconds: the caller
// time stored with each tombstone.
func (c *stampClock) running() int64 {
	return (c.base + time.Since(c.start)).Milliseconds()
}

// save records the running time so far, atomically; after a crash at most
// one interval of it is lost, which only keeps tombstones longer.
func (c *stampClock) save() error {
	return c.mark.Write(time.Unix(0, int64(c.base+time.Since(c.start))))
}

// tombstoneLoop records the running time and expires the tombstones older
// than TombstoneGrace, every HealthyMarkInterval.
func (n *Node) tombstoneLoop(ctx context.Context) {
	every(ctx, n.cfg.HealthyMarkInterval, func() {
		if err := n.clock.save(); err != nil {
			n.logger.Warn("could not record running time", "err", err)
		}
		before := n.clock.running() - n.cfg.TombstoneGrace.Milliseconds()
		if before <= 0 {
			return
		}
		k, err := n.store.ExpireTombstones(ctx, before)
		if k > 0 || err != nil {
			n.logger.Info("tombstones expired", "count", k, "err", err)
		}
		n.metrics.tombstonesExpired.Add(float64(k))
	})
}

// valueLogLoop collects the store's value log every ValueLogGCInterval.
func (n *Node) valueLogLoop(ctx context.Context) {
	if n.cfg.ValueLogGCInterval == 0 {
		return
	}
	every(ctx, n.cfg.ValueLogGCInterval, func() {
		freed, err := n.store.CollectValueLog(ctx)
		if freed > 0 || (err != nil && ctx.Err() == nil) {
			n.logger.Info("value log collected", "freed_bytes", freed, "err", err)
		}
		n.metrics.valueLogFreed.Add(float64(freed))
	})
}
