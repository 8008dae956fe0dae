package repair

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/objects"
	"github.com/stratum-store/stratum/internal/planted"
	"github.com/stratum-store/stratum/internal/retry"
	"github.com/stratum-store/stratum/ring"
)

// StartDrain starts the drain worker once: this node is DRAINING and must
// hand every object it holds to the nodes that own it without it.
func (n *Server) StartDrain() {
	if n.draining.Swap(true) {
		return
	}
	n.d.Go(func() { n.runDrain(n.life) })
}

// runDrain repeats drain passes until one finds every local object with N
// copies on the write placement, then sheds its copies (each removed once
// its N owners confirm theirs, shed.go) and, when none is left, records
// the node as drained, which makes its removal safe.
func (n *Server) runDrain(ctx context.Context) {
	for n.holdWhilePaused(ctx) {
		copied, short, err := n.drainPass(ctx)
		n.logger.Info("drain pass", "copied", copied, "short", short, "err", err)
		if err == nil && short == 0 {
			if _, kept, err := n.shedRound(ctx); err != nil || kept > 0 {
				n.logger.Info("drain: copies not yet confirmed elsewhere", "kept", kept, "err", err)
			} else if err := n.d.Control.MarkDrained(ctx, n.cfg.ID, n.d.Generation); err == nil {
				n.logger.Info("drained: every object has its copies elsewhere, and none is left here")
				return
			}
		}
		retry.Sleep(ctx, time.Second)
	}
}

// drainPass sends every local object to each node of its write placement
// (which leaves this node out). The sends are idempotent puts: a target
// that holds an intact copy acknowledges it, one with a damaged or missing
// copy stores a new one, so a drained node never counts a bad copy as one of
// the N. short counts objects that still lack copies.
func (n *Server) drainPass(ctx context.Context) (copied, short int, err error) {
	all := func(api.OID) bool { return true }
	err = n.rangePages(ctx, all, func(page []api.OID) bool {
		for _, oid := range page {
			if !n.holdWhilePaused(ctx) {
				return false
			}
			c, ok := n.drainObject(ctx, oid)
			copied += c
			if !ok {
				short++
			}
		}
		return true
	})
	return copied, short, err
}

func (n *Server) drainObject(ctx context.Context, oid api.OID) (copied int, ok bool) {
	v := n.view()
	targets := v.Write.Replicas([]byte(oid.String()))
	ok = len(targets) >= v.Ring.ReplicationFactor()
	for _, t := range targets {
		if t.ID == n.cfg.ID {
			ok = false
			continue
		}
		err := n.copyTo(ctx, t, oid, v.Ring.Revision())
		switch {
		case errors.Is(err, errBuried):
			return copied, true // deleted: nothing is left to hand over
		case err != nil:
			ok = false
		default:
			copied++
		}
	}
	return copied, ok
}

// errBuried says that the local copy of an object is gone because the
// object is deleted: a target refused the copy for a newer tombstone and
// that tombstone was applied here, or a tombstone had replaced the copy
// meanwhile. The object is settled; it must not be counted as a copy sent.
var errBuried = errors.New("the object is deleted: its local copy became a tombstone")

// copyTo sends the local copy of oid, with its stamp, to t. A refusal for
// a newer tombstone is never a copy delivered: the tombstone is applied
// here instead (buryHere) and errBuried returned, so this node stops
// holding, and later pushing, a deleted object's copy.
func (n *Server) copyTo(ctx context.Context, t ring.Node, oid api.OID, rev int64) error {
	p, err := n.obj.StoreGet(ctx, oid)
	if errors.Is(err, api.ErrDeleted) {
		return errBuried
	}
	if err != nil {
		return err
	}
	p.Hold(1)
	defer p.Release()
	res := n.obj.PutReplica(ctx, t, oid, p, rev, p.Stamp)
	if !errors.Is(res.Err, api.ErrSuperseded) {
		return res.Err
	}
	if planted.OldOwnerDeletes { // a negative control only (internal/planted)
		return nil
	}
	return n.buryHere(ctx, oid, max(res.Stamp, objects.StampOf(res.Err)))
}

// buryHere applies to the local copy of oid a tombstone with stamp that a
// peer holds. It returns errBuried once the copy is gone, or why not (no
// stamp known; a local copy newer than the tombstone, which stays).
func (n *Server) buryHere(ctx context.Context, oid api.OID, stamp api.Stamp) error {
	if stamp == 0 {
		return fmt.Errorf("%w: %s refused without the tombstone's stamp", api.ErrSuperseded, oid)
	}
	n.clock.Observe(stamp)
	if _, err := n.store.Delete(ctx, oid, stamp, n.clock.Running()); err != nil {
		return objects.StoreError(err)
	}
	return errBuried
}
