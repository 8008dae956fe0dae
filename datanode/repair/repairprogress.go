package repair

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/internal/retry"
)

// Repair pause and progress (docs/repair.md). The pause is cluster-wide, in
// etcd; each node follows it and holds its background movers (anti-entropy
// and its recovery round, hint delivery, drains) at their next step, so a
// resume continues where they stopped. Progress is that of the current (or
// last) anti-entropy round, which is also how objects move after a ring
// change.

// repairState is a node's pause flag and round progress: the round running
// now, and the last round that found anything to copy (what an operator
// wants to see once the work is done; idle rounds do not replace it).
type repairState struct {
	paused  atomic.Bool
	started atomic.Int64 // unix nanoseconds the current round began
	running atomic.Bool
	found   atomic.Int64 // differences found so far this round
	copied  atomic.Int64 // of those, copied
	last    atomic.Pointer[api.RepairProgress]
}

// watchRepairPause follows the cluster-wide pause until ctx is done. The
// movers wait for its first answer (startRepairWatch), so a node that starts
// while repair is paused moves nothing.
func (n *Server) watchRepairPause(ctx context.Context, known chan<- struct{}) {
	first := true
	n.d.Control.WatchRepairPaused(ctx, func(p bool) {
		if n.repair.paused.Swap(p) != p {
			n.logger.Info("repair and rebalancing", "paused", p)
		}
		if first {
			first = false
			close(known)
		}
	})
}

// StartRepairWatch starts the pause watch and waits, at most 5 s (etcd may
// be unreachable: then repair runs), for the pause state to be known.
func (n *Server) StartRepairWatch(ctx context.Context) {
	known := make(chan struct{})
	n.d.Go(func() { n.watchRepairPause(ctx, known) })
	select {
	case <-known:
	case <-time.After(5 * time.Second):
		n.logger.Warn("repair pause state unknown (control plane slow); background repair may run")
	case <-ctx.Done():
	}
}

// holdWhilePaused blocks while repair is paused; it reports false when ctx
// ends first.
func (n *Server) holdWhilePaused(ctx context.Context) bool {
	for n.repair.paused.Load() {
		if ctx.Err() != nil {
			return false
		}
		retry.Sleep(ctx, 100*time.Millisecond)
	}
	return ctx.Err() == nil
}

func (r *repairState) begin() {
	r.found.Store(0)
	r.copied.Store(0)
	r.started.Store(time.Now().UnixNano())
	r.running.Store(true)
}

// end closes the round; one that found work becomes the last one shown.
func (r *repairState) end() {
	cur := r.current(time.Now())
	r.running.Store(false)
	if cur.Found > 0 {
		cur.Running = false
		r.last.Store(&cur)
	}
}

// current is the running round's progress.
func (r *repairState) current(now time.Time) api.RepairProgress {
	p := api.RepairProgress{Running: true, Found: r.found.Load(), Copied: r.copied.Load()}
	p.Remaining = max(p.Found-p.Copied, 0)
	if ns := r.started.Load(); ns != 0 {
		t := time.Unix(0, ns).UTC()
		p.Started = &t
		if secs := now.Sub(t).Seconds(); secs > 0 {
			p.Rate = float64(p.Copied) / secs
		}
		if p.Rate > 0 {
			p.ETASeconds = float64(p.Remaining) / p.Rate
		}
	}
	return p
}

// progress is the status document's view: the running round if it has
// found work, else the last round that did (or an empty one).
func (r *repairState) progress() api.RepairProgress {
	p := api.RepairProgress{}
	if cur := r.current(time.Now()); r.running.Load() && cur.Found > 0 {
		p = cur
	} else if last := r.last.Load(); last != nil {
		p = *last
	}
	p.Paused = r.paused.Load()
	return p
}

// HandleRebalance serves GET /v1/admin/rebalance (this node's progress) and
// POST /v1/admin/rebalance/pause|resume (cluster-wide).
func (n *Server) HandleRebalance(ctx *fasthttp.RequestCtx, path string) error {
	switch {
	case path == api.PathAdminRebalance && ctx.IsGet():
		return httpbody.WriteJSON(ctx, fasthttp.StatusOK, n.repair.progress())
	case path == api.PathAdminRebalance+"/pause" || path == api.PathAdminRebalance+"/resume":
		if !ctx.IsPost() {
			return fmt.Errorf("%w: use POST for %s", api.ErrMethodNotAllowed, path)
		}
		paused := path == api.PathAdminRebalance+"/pause"
		if err := n.d.Control.SetRepairPaused(n.obj.RequestContext(ctx), paused); errors.Is(err, api.ErrForbidden) {
			return err // this node's etcd credentials may not (docs/security.md)
		} else if err != nil {
			return fmt.Errorf("%w: control plane: %v", api.ErrNotReady, err)
		}
		n.logger.Info("admin action", "action", "rebalance", "paused", paused)
		return httpbody.WriteJSON(ctx, fasthttp.StatusOK, map[string]bool{"paused": paused})
	}
	return fmt.Errorf("%w: %s %s", api.ErrRouteNotFound, ctx.Method(), path)
}
