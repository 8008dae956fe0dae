package objects

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/payload"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/requestid"
	"github.com/stratum-store/stratum/internal/planted"
	"github.com/stratum-store/stratum/ring"
)

// Result is one replica's answer to a fanned-out call.
type Result struct {
	node    ring.Node
	Err     error            // nil: acknowledged (PUT) or found (GET/HEAD)
	created bool             // PUT: this replica stored a new copy
	size    int64            // GET/HEAD: the object's size
	Stamp   api.Stamp        // GET/HEAD: the copy's or tombstone's stamp; PUT: a superseding stamp
	obj     *payload.Payload // GET: the verified copy
	lacking []ring.Node      // a read's verdict: replicas that answered "no copy" (read repair targets)
}

// definitive reports whether r settles the question for its replica: a copy
// or a clear "not here" (a corrupt copy counts as not here).
func (r Result) definitive() bool {
	return r.Err == nil || errors.Is(r.Err, api.ErrNotFound) || errors.Is(r.Err, api.ErrDeleted)
}

func (r Result) discard() {
	if r.obj != nil {
		r.obj.Hold(1)
		r.obj.Release()
	}
}

// staleRingError marks a failure that a newer ring may cure: a replica
// refused the coordinator's ring as stale, or the ring had too few nodes.
// The coordinator reloads its ring and retries. It unwraps to the underlying
// error, which is what a client sees if the retries fail too.
type staleRingError struct{ error }

func (e staleRingError) Unwrap() error { return e.error }

// staleIfSmall marks err as curable by a newer ring only when the ring
// itself has fewer nodes than the level needs (nodes may have joined that
// this node has not heard of); DOWN or draining members are member state,
// which a ring reload cannot change.
func staleIfSmall(r *ring.Ring, need int, err error) error {
	if r.Len() < need {
		return staleRingError{err}
	}
	return err
}

// retryStale runs f, and again after reloading the ring while f fails with
// a stale ring, at most StaleRetries more times; it stops early when the
// reload brought no newer ring.
func retryStale[T any](ctx context.Context, n *Server, f func() (T, error)) (T, error) {
	v, err := f()
	for i := 0; i < n.cfg.StaleRetries; i++ {
		if _, stale := errors.AsType[staleRingError](err); !stale {
			break
		}
		before := n.Ring().Revision()
		n.d.ReloadRing(ctx)
		if n.Ring().Revision() == before && i > 0 {
			break
		}
		v, err = f()
	}
	return v, err
}

// fanOut starts call on every given replica in parallel and returns a channel
// that receives exactly len(replicas) results. The calls are tracked by
// n.inflight, so Close waits for those still running after a reply; each is
// bounded by its own deadline.
func (n *Server) fanOut(replicas []ring.Node, call func(ring.Node) Result) <-chan Result {
	return n.fanOutHeld(replicas, nil, call)
}

// fanOutHeld is fanOut for calls that each own one hold on something (a
// payload): refused runs, instead of call, for every call not started
// because the node is closing, so the hold is given back.
func (n *Server) fanOutHeld(replicas []ring.Node, refused func(), call func(ring.Node) Result) <-chan Result {
	results := make(chan Result, len(replicas))
	for _, rn := range replicas {
		n.launch(results, rn, call, refused)
	}
	return results
}

// launch starts call on rn in the background, tracked by n.inflight; once
// Close has begun it sends a shutting-down result instead and runs refused
// (if set), which stands in for what call would have released.
func (n *Server) launch(results chan<- Result, rn ring.Node, call func(ring.Node) Result, refused func()) {
	if !n.inflight.Add() {
		if refused != nil {
			refused()
		}
		results <- closing(rn)
		return
	}
	go func() {
		defer n.inflight.Done()
		results <- call(rn)
	}()
}

// closing is the answer of a replica call not made because Close has
// begun.
func closing(rn ring.Node) Result {
	return Result{node: rn, Err: fmt.Errorf("%w: node is shutting down", api.ErrNotReady)}
}

// runHere is launch on the calling goroutine: call runs now, tracked by
// n.inflight like a launched call (Close closes the store only after it),
// or is refused once Close has begun.
func (n *Server) runHere(results chan<- Result, rn ring.Node, call func(ring.Node) Result) {
	if !n.inflight.Add() {
		results <- closing(rn)
		return
	}
	defer n.inflight.Done()
	results <- call(rn)
}

// writePlan is where one write of an object goes, decided before any call
// is made: the decision is kept apart from the write.
type writePlan struct {
	view    *clusterview.View // the view placed under; its ring's revision fences every replica call
	targets []ring.Node       // the replicas the write is sent to
	down    []string          // owners left out (DOWN or draining): hinted, and counted as failed
	need    int               // acknowledgements the level needs
}

// writePlacement returns the plan of a write of oid at level: the replicas
// it goes to (DOWN ones left out) and how many acknowledgements it needs.
func (n *Server) writePlacement(oid api.OID, level api.Consistency) (writePlan, error) {
	v := n.view()
	if v.Ring == nil {
		return writePlan{}, fmt.Errorf("%w: no ring yet", api.ErrNotReady)
	}
	need := level.Required(v.Ring.ReplicationFactor())
	if planted.EarlyAck { // a negative control only (internal/planted)
		need = 1
	}
	var targets []ring.Node
	var down []string
	for _, rn := range v.Write.Replicas([]byte(oid.String())) {
		if v.State(rn.ID).WriteTarget() {
			targets = append(targets, rn)
		} else {
			down = append(down, rn.ID)
		}
	}
	if len(targets) < need {
		err := fmt.Errorf("%w: consistency %s needs %d replicas, %d are eligible (down or draining: %v)",
			api.ErrQuorumNotReached, level, need, len(targets), down)
		return writePlan{}, staleIfSmall(v.Ring, need, err)
	}
	return writePlan{view: v, targets: targets, down: down, need: need}, nil
}

// Put stores an object at the given consistency. The payload is already
// verified against oid. It returns once enough replicas acknowledged a
// durable copy. The write carries a new stamp; if a replica holds a newer
// tombstone (a delete this node had not seen, or a clock ahead of ours),
// the write goes out once more with a stamp above it: a PUT that follows a
// DELETE stores the object again.
func (n *Server) Put(ctx context.Context, oid api.OID, p *payload.Payload, level api.Consistency) (api.Receipt, error) {
	if n.fenced() {
		return api.Receipt{}, fmt.Errorf("%w: this node's generation is fenced; it coordinates no writes", api.ErrNotReady)
	}
	return retrySuperseded(ctx, n, func(stamp api.Stamp) (api.Receipt, error) {
		return n.putOnce(ctx, oid, p, level, stamp)
	})
}

// retrySuperseded runs a stamped write (a put or a delete) with a new
// stamp, and once more above the stamp a replica answered "superseded"
// with; each try is retried on a stale ring.
func retrySuperseded[T any](ctx context.Context, n *Server, f func(api.Stamp) (T, error)) (T, error) {
	stamp := n.clock.Now()
	v, err := retryStale(ctx, n, func() (T, error) { return f(stamp) })
	if st, ok := errors.AsType[supersededError](err); ok {
		n.clock.Observe(st.stamp)
		stamp = n.clock.Now()
		v, err = retryStale(ctx, n, func() (T, error) { return f(stamp) })
	}
	return v, err
}

// supersededError marks a write that missed its quorum because replicas
// hold a newer stamp (the highest is stamp).
type supersededError struct {
	error
	stamp api.Stamp
}

func (e supersededError) Unwrap() error { return e.error }

// writeTally collects the answers of a fanned-out write until the level is
// met or can no longer be.
type writeTally struct {
	acked, failed []string
	created       bool      // some replica stored a new copy (put) or removed one (delete)
	stale         bool      // some replica refused the ring as stale
	superseded    api.Stamp // the highest stamp a replica refused the write with
}

func (n *Server) tally(oid api.OID, what string, results <-chan Result, targets int, down []string, need int) writeTally {
	t := writeTally{failed: slices.Clone(down)}
	for got := 0; got < targets; got++ {
		res := <-results
		if res.Err != nil {
			t.stale = t.stale || errors.Is(res.Err, api.ErrStaleRing)
			if errors.Is(res.Err, api.ErrSuperseded) {
				t.superseded = max(t.superseded, res.Stamp, StampOf(res.Err))
			}
			t.failed = append(t.failed, res.node.ID)
			n.logger.Warn("replica "+what+" failed", "oid", oid, "replica", res.node.ID, "err", res.Err)
		} else {
			t.acked = append(t.acked, res.node.ID)
			t.created = t.created || res.created
		}
		if len(t.acked) >= need || targets+len(down)-len(t.failed) < need {
			break
		}
	}
	return t
}

// err is the tally's verdict: nil when need replicas acknowledged.
func (t writeTally) err(level api.Consistency, need, replicas int) error {
	if len(t.acked) >= need {
		return nil
	}
	err := fmt.Errorf("%w: %d of %d replicas acknowledged, %d failed or down %v, %d still writing; consistency %s needs %d",
		api.ErrQuorumNotReached, len(t.acked), replicas, len(t.failed), t.failed,
		replicas-len(t.acked)-len(t.failed), level, need)
	switch {
	case t.superseded != 0:
		return supersededError{err, t.superseded}
	case t.stale:
		return staleRingError{err}
	}
	return err
}

func (n *Server) putOnce(ctx context.Context, oid api.OID, p *payload.Payload, level api.Consistency, stamp api.Stamp) (api.Receipt, error) {
	pl, err := n.writePlacement(oid, level)
	if err != nil {
		return api.Receipt{}, err
	}
	v, targets, down, need := pl.view, pl.targets, pl.down, pl.need
	p.Hold(len(targets)) // one per call; a call refused at shutdown releases its own
	results := n.fanOutHeld(targets, p.Release, func(rn ring.Node) Result {
		defer p.Release()
		res := n.PutReplica(ctx, rn, oid, p, v.Ring.Revision(), stamp)
		if hintable(res.Err) {
			n.Hint(rn.ID, oid) // also when the reply has already gone out
		}
		return res
	})
	for _, id := range down {
		n.Hint(id, oid)
	}
	t := n.tally(oid, "write", results, len(targets), down, need)
	if err := t.err(level, need, len(targets)+len(down)); err != nil {
		return api.Receipt{}, err
	}
	pending := pendingOf(targets, t.acked, t.failed)
	return api.Receipt{
		OID: oid.String(), Size: p.Size, Consistency: level, Required: need, RingRevision: v.Ring.Revision(),
		Created: t.created, Acked: t.acked, Failed: t.failed, Pending: pending,
		Degraded: degraded(len(t.acked), len(pending), len(t.failed), v.Ring.ReplicationFactor()),
	}, nil
}

// degraded is a receipt's verdict: true when the write could not be
// attempted on all n replicas (one skipped as DOWN or draining, or failed)
// or fewer than n acknowledged once every attempt ended. A replica still
// writing when the reply goes out (pending) does not make a write degraded:
// in a healthy cluster a quorum reply always leaves one replica writing.
func degraded(acked, pending, failed, n int) bool {
	return failed > 0 || acked+pending < n
}

func pendingOf(replicas []ring.Node, acked, failed []string) []string {
	var out []string
	for _, rn := range replicas {
		if !slices.Contains(acked, rn.ID) && !slices.Contains(failed, rn.ID) {
			out = append(out, rn.ID)
		}
	}
	return out
}

// readPlan is the replicas one read of an object may ask, decided before
// any call is made.
type readPlan struct {
	rev    int64       // the ring revision every replica call carries
	order  []ring.Node // the replicas, in the order they are asked
	former []ring.Node // the tail of order that are owners under earlier rings only
	need   int         // definitive answers the level needs
}

// readPlacement returns the replicas a read may ask, in the order it asks
// them (this node first, then ring order, peers with an open breaker last,
// then the former owners), and how many definitive answers the level
// needs. During a drain the read set is both placements: the old owners
// and the new; after ring changes, the owners under every earlier ring
// whose moves may be unfinished (view.readSet) come after the current
// ones: they keep their copies until the new owners confirm theirs
// (shed.go).
func (n *Server) readPlacement(oid api.OID, level api.Consistency) (readPlan, error) {
	v := n.view()
	if v.Ring == nil {
		return readPlan{}, fmt.Errorf("%w: no ring yet", api.ErrNotReady)
	}
	need := level.Required(v.Ring.ReplicationFactor())
	current, former := v.ReadSet([]byte(oid.String()))
	var order, last []ring.Node
	for _, rn := range current {
		switch {
		case rn.ID == n.cfg.ID:
			order = append([]ring.Node{rn}, order...)
		case n.breakerOpen(rn.Addr):
			last = append(last, rn)
		default:
			order = append(order, rn)
		}
	}
	order = append(append(order, last...), former...)
	if len(current) < need {
		return readPlan{}, staleIfSmall(v.Ring, need, fmt.Errorf("%w: consistency %s needs %d replicas, %d are readable",
			api.ErrQuorumNotReached, level, need, len(current)))
	}
	return readPlan{rev: v.Ring.Revision(), order: order, former: former, need: need}, nil
}

func (n *Server) breakerOpen(addr string) bool { return n.peers.Open(addr) }

// Get reads an object at the given consistency and returns the first copy
// that verifies, once `need` replicas answered definitively. It asks `need`
// replicas first and one more whenever one fails or is slower than the hedge
// delay. "Not found" is only concluded after every readable replica
// answered, and only if at least `need` of them did; otherwise the reply is
// ErrQuorumNotReached, never a guess. The caller releases the payload.
//
// Only the first replica asked sends the object; the others report presence
// (their index entry, asked through the presence batcher, so concurrent
// reads share one :has request per peer), and a quorum read moves the
// bytes once. If the verdict is "found"
// but no body arrived, the body is fetched from a replica that has it, and
// if that copy fails verification, every replica is asked for its copy.
func (n *Server) Get(ctx context.Context, oid api.OID, level api.Consistency) (*payload.Payload, error) {
	res, err := retryStale(ctx, n, func() (Result, error) {
		return n.readAsking(oid, level, func(rn ring.Node, rev int64, first bool) Result {
			if first { // the first in order: this node when it holds a replica
				return n.getReplica(ctx, rn, oid, rev)
			}
			return n.headReplica(ctx, rn, oid, rev)
		}, func(results chan<- Result, rn ring.Node, rev int64) {
			n.askHas(ctx, results, rn, oid, rev)
		})
	})
	if err != nil {
		if st := StampOf(err); st != 0 && errors.Is(err, api.ErrNotFound) {
			n.repairTombstone(oid, st, res.lacking)
		}
		return nil, err
	}
	if res.obj != nil {
		n.readRepair(oid, res.obj, res.lacking, res.Stamp)
		return res.obj, nil
	}
	if body := n.getReplica(ctx, res.node, oid, n.Ring().Revision()); body.Err == nil {
		n.readRepair(oid, body.obj, res.lacking, res.Stamp)
		return body.obj, nil
	}
	res, err = retryStale(ctx, n, func() (Result, error) {
		return n.read(oid, level, func(rn ring.Node, rev int64, _ bool) Result { return n.getReplica(ctx, rn, oid, rev) })
	})
	return res.obj, err
}

// Head is Get without the body: it returns the object's size. Replicas
// report presence without re-reading their copy.
func (n *Server) Head(ctx context.Context, oid api.OID, level api.Consistency) (int64, error) {
	res, err := retryStale(ctx, n, func() (Result, error) {
		return n.read(oid, level, func(rn ring.Node, rev int64, _ bool) Result {
			return n.headReplica(ctx, rn, oid, rev)
		})
	})
	return res.size, err
}

// readOutcome accumulates the answers of one read. Copies and tombstones
// both count as answers; the verdict goes to the higher stamp, a tie to
// the tombstone (store/tombstone.go).
type readOutcome struct {
	found     *Result
	missing   []ring.Node // replicas that said they have no (intact) copy
	holders   []ring.Node // replicas that have a copy
	deleted   []ring.Node // replicas that have a tombstone
	live      api.Stamp   // the highest stamp of a copy
	tomb      api.Stamp   // the highest stamp of a tombstone
	answers   int
	failed    []string
	staleSeen bool
	former    []ring.Node // owners under the previous ring only: a copy there counts, an absence does not
}

// read asks the replicas of oid in placement order (this node first when
// it holds one); call's first is true for the first replica asked only.
func (n *Server) read(oid api.OID, level api.Consistency, call func(rn ring.Node, rev int64, first bool) Result) (Result, error) {
	return n.readAsking(oid, level, call, nil)
}

// readAsking is read with the peers after the first asked through ask,
// when it is not nil: ask queues the question and returns, and its answer
// reaches results later (askHas), with no goroutine waiting for it.
func (n *Server) readAsking(oid api.OID, level api.Consistency, call func(rn ring.Node, rev int64, first bool) Result,
	ask func(results chan<- Result, rn ring.Node, rev int64)) (Result, error) {
	pl, err := n.readPlacement(oid, level)
	if err != nil {
		return Result{}, err
	}
	rev, order, former, need := pl.rev, pl.order, pl.former, pl.need
	results := make(chan Result, len(order))
	launched, returned := 0, 0
	// The first call, when it reads this node's own copy, runs on this
	// goroutine once the others are started: no goroutine of its own to
	// start and grow a stack for (6 % of a GET's CPU, 2026-12-06).
	var local ring.Node
	next := func() {
		if launched < len(order) {
			first, rn := launched == 0, order[launched]
			switch {
			case first && rn.ID == n.cfg.ID:
				local = rn
			case !first && ask != nil && rn.ID != n.cfg.ID:
				if !n.inflight.Add() { // Done once the answer is sent
					results <- closing(rn)
					break
				}
				ask(results, rn, rev)
			default:
				n.launch(results, rn, func(rn ring.Node) Result { return call(rn, rev, first) }, nil)
			}
			launched++
		}
	}
	for launched < need {
		next()
	}
	hedge := time.NewTimer(n.cfg.HedgeDelay)
	defer hedge.Stop()
	if local.ID != "" {
		n.runHere(results, local, func(rn ring.Node) Result { return call(rn, rev, true) })
	}
	out := readOutcome{former: former}
	for returned < launched {
		select {
		case res := <-results:
			returned++
			if !out.record(res, n) {
				next()
			}
		case <-hedge.C:
			next()
			hedge.Reset(n.cfg.HedgeDelay)
			continue
		}
		if out.found != nil && out.answers >= need {
			break
		}
		if out.found == nil && out.answers >= need {
			for launched < len(order) { // a not-found verdict asks everyone
				next()
			}
		}
	}
	n.drain(results, launched-returned)
	return out.verdict(oid, level, need, len(order)-len(former))
}

func (o *readOutcome) verdict(oid api.OID, level api.Consistency, need, asked int) (Result, error) {
	switch {
	case o.answers >= need && len(o.deleted) > 0 && o.tomb >= o.live:
		if o.found != nil {
			o.found.discard()
		}
		// lacking: the copies the tombstone should replace.
		err := fmt.Errorf("%w: %s was deleted (%d of %d replicas answered)", api.ErrNotFound, oid, o.answers, asked)
		return Result{lacking: o.holders}, &peer.StampedError{Err: err, Stamp: o.tomb}
	case o.answers >= need && o.found != nil:
		r := *o.found
		r.lacking, r.Stamp = append(o.missing, o.deleted...), o.live
		return r, nil
	case o.answers >= need:
		return Result{}, fmt.Errorf("%w: %s (%d of %d replicas answered)", api.ErrNotFound, oid, o.answers, asked)
	}
	if o.found != nil {
		o.found.discard()
	}
	err := fmt.Errorf("%w: %d of %d replicas answered, consistency %s needs %d (failed: %v)",
		api.ErrQuorumNotReached, o.answers, asked, level, need, o.failed)
	if o.staleSeen {
		return Result{}, staleRingError{err}
	}
	return Result{}, err
}

// record adds one replica's answer and reports whether it counts toward
// the level.
func (o *readOutcome) record(res Result, n *Server) bool {
	switch {
	case res.Err == nil:
		o.holders, o.live = append(o.holders, res.node), max(o.live, res.Stamp)
	case errors.Is(res.Err, api.ErrDeleted):
		o.deleted, o.tomb = append(o.deleted, res.node), max(o.tomb, res.Stamp)
	}
	switch {
	case res.Err == nil && (o.found == nil || o.found.obj == nil && res.obj != nil):
		o.found = &res // prefer an answer that carries the bytes
	case res.Err == nil:
		res.discard()
	case !res.definitive():
		o.staleSeen = o.staleSeen || errors.Is(res.Err, api.ErrStaleRing)
		o.failed = append(o.failed, res.node.ID)
		n.logger.Warn("replica read failed", "replica", res.node.ID, "err", res.Err)
	}
	if slices.ContainsFunc(o.former, clusterview.SameID(res.node)) && res.Err != nil {
		return false // a former owner that shed its copy (or never had it) settles nothing
	}
	if errors.Is(res.Err, api.ErrNotFound) {
		o.missing = append(o.missing, res.node)
	}
	if res.definitive() {
		o.answers++
		return true
	}
	return false
}

// drain releases, in the background, the copies of replicas that answer
// after the verdict.
func (n *Server) drain(results <-chan Result, left int) {
	if left == 0 {
		return
	}
	tracked := n.inflight.Add() // untracked during Close is harmless: it only releases payloads
	go func() {
		if tracked {
			defer n.inflight.Done()
		}
		for i := 0; i < left; i++ {
			res := <-results
			res.discard()
		}
	}()
}

// readRepair sends the verified copy p, in the background, to the replicas
// a read found without an intact copy. The puts are ordinary replica writes
// (fenced by the ring revision; a damaged copy there is replaced) and are
// counted in n.inflight, so Close waits for them. Only small objects are
// repaired this way: a large one lives in a spool file whose lifetime is the
// reader's, and is left to background repair.
func (n *Server) readRepair(oid api.OID, p *payload.Payload, lacking []ring.Node, stamp api.Stamp) {
	if p.File != nil {
		return
	}
	v := n.view()
	r := v.Ring
	for _, rn := range lacking {
		// Only a node that takes writes for oid gets a copy: a draining
		// node's copies are on their way out (forWriteOwner).
		if !v.Write.Owns(rn.ID, []byte(oid.String())) || !v.State(rn.ID).WriteTarget() || !n.inflight.Add() {
			continue // placement moved on, the node drains, or this node is closing
		}
		p.Hold(1)
		go func() {
			defer n.inflight.Done()
			defer p.Release()
			res := n.PutReplica(requestid.With(n.life, "read-repair"), rn, oid, p, r.Revision(), stamp)
			n.metrics.ReadRepairs.WithLabelValues(outcomeWord(res.Err)).Inc()
			if res.Err != nil {
				n.logger.Warn("read repair failed", "oid", oid, "replica", rn.ID, "err", res.Err)
			}
		}()
	}
}

func outcomeWord(err error) string {
	if err != nil {
		return "failed"
	}
	return "repaired"
}
