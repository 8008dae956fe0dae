package datanode

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// replicaResult is one replica's answer to a fanned-out call.
type replicaResult struct {
	node    ring.Node
	err     error    // nil: acknowledged (PUT) or found (GET/HEAD)
	created bool     // PUT: this replica stored a new copy
	size    int64    // GET/HEAD: the object's size
	obj     *payload // GET: the verified copy
}

// definitive reports whether r settles the question for its replica: a copy
// or a clear "not here" (a corrupt copy counts as not here).
func (r replicaResult) definitive() bool {
	return r.err == nil || errors.Is(r.err, api.ErrNotFound)
}

// placement returns the ring to use, the replicas of oid and how many of
// them the level requires, or ErrQuorumNotReached if the ring is too small.
func (n *Node) placement(oid api.OID, level api.Consistency) (*ring.Ring, []ring.Node, int, error) {
	r := n.ring.Load()
	if r == nil {
		return nil, nil, 0, fmt.Errorf("%w: no ring yet", api.ErrNotReady)
	}
	replicas := r.Replicas([]byte(oid.String()))
	need := level.Required(r.ReplicationFactor())
	if len(replicas) < need {
		// Perhaps nodes joined that this node has not heard of yet: the
		// caller reloads the ring and tries once more.
		return nil, nil, 0, staleRingError{fmt.Errorf("%w: consistency %s needs %d replicas, the ring has %d nodes",
			api.ErrQuorumNotReached, level, need, len(replicas))}
	}
	return r, replicas, need, nil
}

// fanOut starts call on every replica in parallel and returns a channel that
// receives exactly len(replicas) results. The calls are tracked by
// n.inflight, so Close waits for those still running after a reply; each is
// bounded by its own deadline.
func (n *Node) fanOut(replicas []ring.Node, call func(ring.Node) replicaResult) <-chan replicaResult {
	results := make(chan replicaResult, len(replicas))
	n.inflight.Add(len(replicas))
	for _, rn := range replicas {
		go func() {
			defer n.inflight.Done()
			results <- call(rn)
		}()
	}
	return results
}

// Put stores an object at the given consistency. The payload is already
// verified against oid. It returns once enough replicas acknowledged a
// durable copy; a stale ring is reloaded and the write retried once.
func (n *Node) Put(ctx context.Context, oid api.OID, p *payload, level api.Consistency) (api.Receipt, error) {
	return retryStale(ctx, n, func() (api.Receipt, error) { return n.putOnce(ctx, oid, p, level) })
}

// staleRingError marks a quorum failure in which some replica refused the
// coordinator's ring as stale: the coordinator reloads its ring and retries
// once. It unwraps to the quorum error, which is what a client sees if the
// retry fails too.
type staleRingError struct{ error }

func (e staleRingError) Unwrap() error { return e.error }

// retryStale runs f, and once more after reloading the ring if f failed
// because of a stale ring.
func retryStale[T any](ctx context.Context, n *Node, f func() (T, error)) (T, error) {
	v, err := f()
	if _, stale := errors.AsType[staleRingError](err); stale {
		n.reloadRing(ctx)
		v, err = f()
	}
	return v, err
}

func (n *Node) putOnce(ctx context.Context, oid api.OID, p *payload, level api.Consistency) (api.Receipt, error) {
	r, replicas, need, err := n.placement(oid, level)
	if err != nil {
		return api.Receipt{}, err
	}
	p.hold(len(replicas))
	results := n.fanOut(replicas, func(rn ring.Node) replicaResult {
		defer p.release()
		return n.putReplica(ctx, rn, oid, p, r.Revision())
	})
	rec := api.Receipt{OID: oid.String(), Size: p.size, Consistency: level, Required: need, RingRevision: r.Revision()}
	var stale bool
	for got := 0; got < len(replicas); got++ {
		res := <-results
		if res.err != nil {
			stale = stale || errors.Is(res.err, api.ErrStaleRing)
			rec.Failed = append(rec.Failed, res.node.ID)
			n.logger.Warn("replica write failed", "oid", oid, "replica", res.node.ID, "err", res.err)
		} else {
			rec.Acked = append(rec.Acked, res.node.ID)
			rec.Created = rec.Created || res.created
		}
		if len(rec.Acked) >= need || len(replicas)-len(rec.Failed) < need {
			break
		}
	}
	if len(rec.Acked) < need {
		err := fmt.Errorf("%w: %d of %d replicas acknowledged, %d failed %v, %d still writing; consistency %s needs %d",
			api.ErrQuorumNotReached, len(rec.Acked), len(replicas), len(rec.Failed), rec.Failed,
			len(replicas)-len(rec.Acked)-len(rec.Failed), level, need)
		if stale {
			err = staleRingError{err}
		}
		return api.Receipt{}, err
	}
	rec.Pending = pendingOf(replicas, rec.Acked, rec.Failed)
	rec.Degraded = len(rec.Acked) < r.ReplicationFactor()
	return rec, nil
}

func pendingOf(replicas []ring.Node, acked, failed []string) []string {
	done := make(map[string]bool, len(acked)+len(failed))
	for _, id := range append(append([]string{}, acked...), failed...) {
		done[id] = true
	}
	var out []string
	for _, rn := range replicas {
		if !done[rn.ID] {
			out = append(out, rn.ID)
		}
	}
	return out
}

// readOutcome is the coordinator's verdict on a GET or HEAD.
type readOutcome struct {
	found     *replicaResult
	answers   int
	failed    []string
	staleSeen bool
}

// Get reads an object at the given consistency. It returns the first
// verified copy once `need` replicas answered definitively. "Not found" is
// only concluded after every replica answered or failed (each within its
// deadline), since any of them may hold a copy, and only if at least `need`
// of them said so; otherwise it is ErrQuorumNotReached, never a guess. The
// caller releases the returned payload.
func (n *Node) Get(ctx context.Context, oid api.OID, level api.Consistency) (*payload, error) {
	res, err := retryStale(ctx, n, func() (replicaResult, error) {
		return n.read(oid, level, func(rn ring.Node, rev int64) replicaResult {
			return n.getReplica(ctx, rn, oid, rev)
		})
	})
	if err != nil {
		return nil, err
	}
	return res.obj, nil
}

// Head is Get without the body: it returns the object's size. Replicas
// report presence without re-reading their copy.
func (n *Node) Head(ctx context.Context, oid api.OID, level api.Consistency) (int64, error) {
	res, err := retryStale(ctx, n, func() (replicaResult, error) {
		return n.read(oid, level, func(rn ring.Node, rev int64) replicaResult {
			return n.headReplica(ctx, rn, oid, rev)
		})
	})
	if err != nil {
		return 0, err
	}
	return res.size, nil
}

func (n *Node) read(oid api.OID, level api.Consistency, call func(ring.Node, int64) replicaResult) (replicaResult, error) {
	r, replicas, need, err := n.placement(oid, level)
	if err != nil {
		return replicaResult{}, err
	}
	results := n.fanOut(replicas, func(rn ring.Node) replicaResult { return call(rn, r.Revision()) })
	var out readOutcome
	for got := 0; got < len(replicas); got++ {
		out.record(<-results, n)
		if out.found != nil && out.answers >= need || len(replicas)-len(out.failed) < need {
			n.drain(results, len(replicas)-got-1)
			break
		}
	}
	switch {
	case out.answers >= need && out.found != nil:
		return *out.found, nil
	case out.answers >= need:
		return replicaResult{}, fmt.Errorf("%w: %s (%d of %d replicas answered)", api.ErrNotFound, oid, out.answers, len(replicas))
	}
	if out.found != nil {
		out.found.discard()
	}
	err = fmt.Errorf("%w: %d of %d replicas answered, consistency %s needs %d (failed: %v)",
		api.ErrQuorumNotReached, out.answers, len(replicas), level, need, out.failed)
	if out.staleSeen {
		err = staleRingError{err}
	}
	return replicaResult{}, err
}

func (o *readOutcome) record(res replicaResult, n *Node) {
	switch {
	case res.err == nil && o.found == nil:
		o.found = &res
	case res.err == nil:
		res.discard()
	case !res.definitive():
		o.staleSeen = o.staleSeen || errors.Is(res.err, api.ErrStaleRing)
		o.failed = append(o.failed, res.node.ID)
		n.logger.Warn("replica read failed", "replica", res.node.ID, "err", res.err)
	}
	if res.definitive() {
		o.answers++
	}
}

// drain releases, in the background, the copies of replicas that answer
// after the verdict.
func (n *Node) drain(results <-chan replicaResult, left int) {
	if left == 0 {
		return
	}
	n.inflight.Add(1)
	go func() {
		defer n.inflight.Done()
		for i := 0; i < left; i++ {
			res := <-results
			res.discard()
		}
	}()
}

func (r replicaResult) discard() {
	if r.obj != nil {
		r.obj.hold(1)
		r.obj.release()
	}
}
