package repair

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/objects"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/internal/retry"
)

// ScrubLoop re-verifies every local copy once per ScrubInterval, at most
// ScrubRate objects a second so it yields to foreground traffic. A copy
// that fails verification is quarantined (never served again) and replaced
// from a replica whose copy verifies.
func (n *Server) ScrubLoop(ctx context.Context) {
	if n.cfg.ScrubInterval <= 0 {
		return
	}
	retry.Every(ctx, n.cfg.ScrubInterval, func() {
		checked, repaired, err := n.scrubPass(ctx)
		if err == nil {
			n.lastScrub.Store(time.Now().UnixNano())
		}
		if checked > 0 || err != nil {
			n.logger.Info("scrub pass", "checked", checked, "repaired", repaired, "err", err)
		}
	})
}

// scrubPass verifies each local copy once.
func (n *Server) scrubPass(ctx context.Context) (checked, repaired int, err error) {
	pace := time.Second / time.Duration(n.cfg.ScrubRate)
	err = n.store.Range(ctx, func(oid api.OID, size int64) bool {
		checked++
		n.metrics.Scrubbed.Inc()
		n.metrics.ScrubbedBytes.Add(float64(size))
		obj, gerr := n.store.Get(ctx, oid)
		switch {
		case gerr == nil:
			if obj.Body != nil {
				obj.Body.Close()
			}
		case errors.Is(gerr, store.ErrCorrupt):
			if rerr := n.replaceDamaged(ctx, oid); rerr != nil {
				n.logger.Error("scrub: damaged copy not replaced", "oid", oid, "err", rerr)
			} else {
				repaired++
			}
		}
		retry.Sleep(ctx, pace)
		return ctx.Err() == nil
	})
	return checked, repaired, err
}

// replaceDamaged quarantines the local copy of oid and stores a verified
// copy fetched from another replica.
func (n *Server) replaceDamaged(ctx context.Context, oid api.OID) error {
	n.metrics.ScrubDamaged.Inc()
	if err := n.store.Quarantine(ctx, oid); err != nil {
		return err
	}
	v := n.view()
	key := []byte(oid.String())
	for _, rn := range objects.UniqueNodes(v.Ring.Replicas(key), v.Write.Replicas(key)) {
		if rn.ID == n.cfg.ID || !v.State(rn.ID).ReadTarget() {
			continue
		}
		p, err := n.obj.FetchRemote(ctx, rn, oid, v.Ring.Revision()) // verified against the OID
		if err != nil {
			continue
		}
		p.Hold(1)
		_, err = n.obj.StorePut(ctx, oid, p, p.Stamp)
		p.Release()
		if err == nil {
			n.metrics.ScrubRepaired.Inc()
			return nil
		}
	}
	return fmt.Errorf("no replica had a copy that verifies; the object is quarantined here")
}
