package datanode

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/refstore"
	"github.com/stratum-store/stratum/internal/planted"
	"github.com/stratum-store/stratum/internal/retry"
)

// refs is a node's part in the ref protocol of docs/refs.md: the newest
// partition records it knows, the epochs it has taken over as primary, and
// its ref store.
type refs struct {
	n     *Node
	store *refstore.Store
	cfg   atomic.Pointer[api.PartitionConfig]
	kick  chan struct{} // wakes the primary loop

	mu    sync.Mutex // guards parts (the map only; never held during I/O)
	parts map[int]*partState

	// noConfig: a read of etcd found no partition configuration.
	noConfig atomic.Bool
	// wasReady latches once this node served its share of the partitions:
	// from then on partitions no longer hold its readiness back.
	wasReady atomic.Bool
}

// partState is one partition as this node sees it.
type partState struct {
	// lock is the partition lock: a transaction, a takeover and a catch-up
	// each hold it for their whole run, so they never interleave. Reads do
	// not take it.
	lock sync.Mutex
	// rec is the newest record known: from the watch, or from a change this
	// node made itself (which the watch may deliver later).
	rec atomic.Pointer[api.Partition]
	// active is the epoch this node has taken over as primary, 0 if none.
	active atomic.Int64
	// leaseSeq is the node's registration the takeover ran under: after a
	// lost lease and a re-registration a promotion may have happened that
	// this node's watch has not shown yet, so it must take over again.
	leaseSeq atomic.Uint64
}

func openRefs(n *Node) (*refs, error) {
	st, err := refstore.Open(filepath.Join(n.cfg.Store.Dir, "refs"), refstore.Options{NoSync: n.cfg.Store.NoSync})
	if err != nil {
		return nil, err
	}
	return &refs{n: n, store: st, kick: make(chan struct{}, 1), parts: map[int]*partState{}}, nil
}

func (r *refs) part(id int) *partState {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := r.parts[id]
	if ps == nil {
		ps = &partState{}
		r.parts[id] = ps
	}
	return ps
}

// record returns the newest known record of partition id.
func (r *refs) record(id int) (api.Partition, bool) {
	p := r.part(id).rec.Load()
	if p == nil {
		return api.Partition{}, false
	}
	return *p, true
}

// adopt installs rec as the newest record if it is newer than the one held.
// It reports whether it did.
func (ps *partState) adopt(rec api.Partition) bool {
	for {
		cur := ps.rec.Load()
		if cur != nil && cur.Epoch >= rec.Epoch {
			return false
		}
		if ps.rec.CompareAndSwap(cur, &rec) {
			return true
		}
	}
}

// publish takes the records from the watch and wakes the primary loop when
// one names this node primary at an epoch it has not taken over.
func (r *refs) publish(parts map[int]api.Partition) {
	wake := false
	for id, rec := range parts {
		ps := r.part(id)
		ps.adopt(rec)
		cur := ps.rec.Load()
		wake = wake || (cur.Primary == r.n.cfg.ID && !r.takenOver(ps, cur))
	}
	if wake {
		r.wake()
	}
}

func (r *refs) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// takenOver reports whether this node completed a takeover for rec's epoch
// under its current registration.
func (r *refs) takenOver(ps *partState, rec *api.Partition) bool {
	return ps.active.Load() == rec.Epoch && ps.leaseSeq.Load() == r.n.reg.Load().seq
}

// serving reports whether this node may answer for partition id as its
// primary now: checks 1-4 of docs/refs.md.
func (r *refs) serving(id int) bool {
	ps := r.part(id)
	rec := ps.rec.Load()
	active := ps.active.Load()
	reg := r.n.reg.Load() // one load: the number and the lease of the same registration
	leased := ps.leaseSeq.Load() == reg.seq && r.n.leaseValid(reg)
	return rec != nil && rec.Primary == r.n.cfg.ID && active != 0 && active == rec.Epoch &&
		r.store.Floor(id) <= active && (leased || planted.NoLease) && !r.n.fenced.Load()
}

// stepDown stops serving partition id until a new takeover.
func (r *refs) stepDown(id int, why string, err error) {
	ps := r.part(id)
	if ps.active.Swap(0) != 0 {
		r.n.logger.Warn("refs: stepping down as primary", "partition", id, "why", why, "err", err)
	}
	r.wake()
}

// leaseValid reports whether reg's lease surely has not expired in etcd
// (docs/refs.md, check 4).
func (n *Node) leaseValid(reg *registration) bool {
	return reg.alive() && time.Now().Before(reg.lease.ValidUntil())
}

// partitionOf maps repo to its partition, or fails before the cluster has
// a partition configuration.
func (r *refs) partitionOf(repo string) (int, error) {
	cfg := r.cfg.Load()
	if cfg == nil {
		return 0, api.ErrNoPartitions
	}
	return api.PartitionOf(repo, cfg.Count), nil
}

// watch follows the partition configuration and records until ctx is done.
func (r *refs) watch(ctx context.Context) {
	for r.cfg.Load() == nil && ctx.Err() == nil {
		cfg, ok, err := r.n.cfg.Control.PartitionConfig(ctx)
		if err == nil && ok {
			r.cfg.Store(&cfg)
			break
		}
		if err == nil {
			r.noConfig.Store(true)
		}
		retry.Sleep(ctx, 500*time.Millisecond)
	}
	r.n.cfg.Control.WatchPartitions(ctx, r.publish)
}

// ready returns nil when the ref partitions do not hold this node's
// readiness back (docs/operations.md, Readiness): this node knows the
// partition configuration and every partition's record, and serves as
// primary every partition whose record names it. Without
// Config.ReadyWaitsForPartitions (no planner runs), a configuration found
// absent in etcd also does. Once it held, it latches: losing etcd later
// must not take the cluster out of a load balancer.
func (r *refs) ready() error {
	if r.wasReady.Load() {
		return nil
	}
	cfg := r.cfg.Load()
	switch {
	case cfg == nil && !r.n.cfg.ReadyWaitsForPartitions && r.noConfig.Load():
		return nil
	case cfg == nil:
		return errors.New("the partition configuration is not known yet (the planner writes it)")
	}
	missing, led, unserved := 0, 0, 0
	for id := 0; id < cfg.Count; id++ {
		rec, ok := r.record(id)
		switch {
		case !ok:
			missing++
		case rec.Primary == r.n.cfg.ID:
			led++
			if !r.serving(id) {
				unserved++
			}
		}
	}
	switch {
	case missing > 0:
		return fmt.Errorf("%d of %d partition records not known yet (the planner creates them once enough nodes are ACTIVE)", missing, cfg.Count)
	case unserved > 0:
		return fmt.Errorf("serves %d of the %d partitions it is primary of", led-unserved, led)
	}
	r.wasReady.Store(true)
	return nil
}

// primaryOf returns the ID of the node the newest record names primary.
func (r *refs) primaryOf(id int) (string, bool) {
	rec, ok := r.record(id)
	if !ok || rec.Primary == "" {
		return "", false
	}
	return rec.Primary, true
}

// led lists the partitions whose newest record names this node primary.
func (r *refs) led() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for id, ps := range r.parts {
		if rec := ps.rec.Load(); rec != nil && rec.Primary == r.n.cfg.ID {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (r *refs) report() api.PartitionReport {
	rep := api.PartitionReport{Node: r.n.cfg.ID, Config: r.cfg.Load(), Partitions: []api.PartitionStatus{}}
	r.mu.Lock()
	ids := make([]int, 0, len(r.parts))
	for id := range r.parts {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		rec, ok := r.record(id)
		if !ok {
			continue
		}
		rep.Partitions = append(rep.Partitions, api.PartitionStatus{Partition: rec, Serving: r.serving(id),
			Version: r.store.Version(id), Floor: r.store.Floor(id)})
	}
	return rep
}

// servingCount counts the partitions this node serves as primary now.
func (r *refs) servingCount() int {
	n := 0
	for _, id := range r.led() {
		if r.serving(id) {
			n++
		}
	}
	return n
}

// summary counts the partitions for /v1/cluster and the status page.
func (r *refs) summary() *api.PartitionSummary {
	cfg := r.cfg.Load()
	if cfg == nil {
		return nil
	}
	s := &api.PartitionSummary{Count: cfg.Count, Replicas: cfg.Replicas, Primaries: map[string]int{}}
	for id := 0; id < cfg.Count; id++ {
		rec, ok := r.record(id)
		if !ok {
			continue
		}
		s.Assigned++
		s.Primaries[rec.Primary]++
		if len(rec.InSync) < cfg.Replicas {
			s.UnderReplicated++
		}
	}
	s.Led, s.Serving = len(r.led()), r.servingCount()
	return s
}
