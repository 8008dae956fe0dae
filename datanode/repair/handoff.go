package repair

import (
	"context"
	"errors"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/objects"
	"github.com/stratum-store/stratum/internal/retry"
	"github.com/stratum-store/stratum/ring"
)

// hintBatch is the most hints delivered to one peer per round.
const hintBatch = 256

// Hinted handoff: when a write could not reach a replica (transport error,
// timeout, open breaker, 5xx) or skipped it as DOWN, the coordinator queues
// a durable hint "peer should hold oid" in <Store.Dir>/hints. handoffLoop
// delivers the hints of peers that are write targets again, reading the
// object from the local store or through a quorum read.

// HandoffLoop delivers hints every HintInterval until ctx is done, and
// expires the old ones.
func (n *Server) HandoffLoop(ctx context.Context) {
	pace := time.Second / time.Duration(n.cfg.HintRate)
	retry.Every(ctx, n.cfg.HintInterval, func() {
		if k := n.hints.Expire(time.Now()); k > 0 {
			n.logger.Warn("hints expired; anti-entropy must cover them", "count", k)
		}
		for _, peer := range n.hints.Peers() {
			if !n.holdWhilePaused(ctx) {
				return
			}
			n.deliverHints(ctx, peer, pace)
		}
	})
}

// deliverHints sends up to hintBatch of peer's hints, oldest first, if the
// peer is a write target. It stops at the first failed send: the peer is
// still unreachable, and its breaker keeps the next round cheap. A hint
// whose object cannot be read now is skipped, so it cannot hold up the rest.
func (n *Server) deliverHints(ctx context.Context, peer string, pace time.Duration) {
	v := n.view()
	rn, ok := clusterview.RingNode(v.Ring, peer)
	if !ok || !v.State(peer).WriteTarget() {
		return // not in the ring (hints expire) or DOWN / DRAINING
	}
	for _, h := range n.hints.List(peer, hintBatch) {
		err := n.deliverHint(ctx, rn, h.OID)
		if err != nil && ctx.Err() == nil {
			n.logger.Debug("hint not delivered", "peer", peer, "oid", h.OID, "err", err)
			return
		}
		retry.Sleep(ctx, pace)
		if ctx.Err() != nil {
			return
		}
	}
}

// deliverHint brings rn up to date on oid and removes the hint on success:
// it sends the copy (with its stamp) or, if the object was deleted, the
// tombstone, whichever the local store or else a quorum read finds. A
// hint whose peer no longer owns the object, or whose object a quorum read
// finds nowhere (its write failed everywhere), is removed undelivered; one
// whose object cannot be read now is kept, and nil is returned: only a
// failed send is an error. A peer that holds something newer counts as
// delivered.
func (n *Server) deliverHint(ctx context.Context, rn ring.Node, oid api.OID) error {
	r := n.Ring()
	if !r.Owns(rn.ID, []byte(oid.String())) {
		return n.hints.Remove(rn.ID, oid)
	}
	p, err := n.obj.StoreGet(ctx, oid)
	if err != nil && !errors.Is(err, api.ErrDeleted) {
		p, err = n.obj.Get(ctx, oid, api.Quorum)
	}
	var res objects.Result
	switch tomb := objects.StampOf(err); {
	case tomb != 0 && (errors.Is(err, api.ErrDeleted) || errors.Is(err, api.ErrNotFound)):
		res = n.obj.DeleteReplica(ctx, rn, oid, tomb, r.Revision())
	case errors.Is(err, api.ErrNotFound):
		n.logger.Warn("hinted object found nowhere; hint dropped", "peer", rn.ID, "oid", oid)
		return n.hints.Remove(rn.ID, oid)
	case err != nil:
		n.logger.Warn("hinted object not readable now; hint kept", "peer", rn.ID, "oid", oid, "err", err)
		return nil
	default:
		p.Hold(1)
		res = n.obj.PutReplica(ctx, rn, oid, p, r.Revision(), p.Stamp)
		p.Release()
	}
	if res.Err != nil && !errors.Is(res.Err, api.ErrSuperseded) {
		return res.Err
	}
	n.metrics.HintsDelivered.Inc()
	return n.hints.Remove(rn.ID, oid)
}
