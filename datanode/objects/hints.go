package objects

import (
	"errors"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/store"
)

// Hinted handoff, the write side: when a write could not reach a replica
// (transport error, timeout, open breaker, 5xx) or skipped it as DOWN, the
// coordinator queues a durable hint "peer should hold oid"; the repair
// loops deliver it once the peer is a write target again.

// Hint queues a handoff of oid to peer; failing to queue it is logged, not
// returned: the write's outcome does not depend on it.
func (n *Server) Hint(peer string, oid api.OID) {
	if peer == n.cfg.ID || n.hints == nil {
		return
	}
	if err := n.hints.Add(peer, oid); err != nil {
		n.logger.Error("hint not recorded", "peer", peer, "oid", oid, "err", err)
	}
}

// hintAll queues a handoff to peer of each batch item in idx, if err is
// one a handoff can complete.
func (n *Server) hintAll(peer string, items []store.BatchItem, idx []int, err error) {
	if !hintable(err) {
		return
	}
	for _, i := range idx {
		n.Hint(peer, items[i].OID)
	}
}

// hintable reports whether a failed replica write is one a later handoff
// can complete: the replica was unreachable, timed out, behind an open
// breaker or failed on its side (5xx). A refusal (stale ring or generation,
// a bad request) is not: the placement or the caller is what was wrong.
func hintable(err error) bool {
	if err == nil {
		return false
	}
	if re, ok := errors.AsType[*api.RemoteError](err); ok {
		return re.Status >= 500
	}
	for _, refused := range []error{api.ErrStaleRing, api.ErrStaleGeneration, api.ErrBadRequest, api.ErrDigestMismatch, api.ErrTooLarge, api.ErrNotReady, api.ErrSuperseded} {
		if errors.Is(err, refused) {
			return false
		}
	}
	return true
}
