package refs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/budget"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/refstore"
	"github.com/stratum-store/stratum/internal/planted"
	"github.com/stratum-store/stratum/internal/retry"
)

// Config is what a Server needs to know; the data node fills it from its
// own Config (the Ref* fields).
type Config struct {
	ID            string        // this node's ID
	Dir           string        // the ref store's directory
	NoSync        bool          // skip fsync (tests and benchmarks only)
	Timeout       time.Duration // one ref message to a replica, retries included (RefTimeout)
	RetryWindow   time.Duration // how long a request waits for a partition's primary (RefRetryWindow)
	CheckInterval time.Duration // how often the primary loop runs without a kick (RefCheckInterval)
	// ReadyWaitsForPartitions: readiness waits for a partition
	// configuration even when etcd has none (a planner will write one).
	ReadyWaitsForPartitions bool
	Logger                  *slog.Logger
}

// Control is what a Server needs from the control plane: the partition
// records and conditional writes to them. datanode.ControlPlane has it.
type Control interface {
	PartitionConfig(ctx context.Context) (cfg api.PartitionConfig, ok bool, err error)
	WatchPartitions(ctx context.Context, publish func(map[int]api.Partition)) error
	UpdatePartition(ctx context.Context, epoch int64, next api.Partition) (int64, error)
	DropDownFromInSync(ctx context.Context, epoch int64, next api.Partition, node string) (int64, error)
	PlanPartitions(ctx context.Context) ([]api.PartitionAction, error)
}

// Deps are the parts of the data node a Server uses. Each is a function or
// a small interface, so that the ref protocol reaches no other mechanism's
// state.
type Deps struct {
	Control Control
	Peers   *peer.Client
	View    func() *clusterview.View // the node's current view (replica addresses, the ring revision)
	// Registration is the node's current registration in one load: its
	// sequence number and whether its lease surely has not expired in
	// etcd (docs/refs.md, check 4).
	Registration func() (seq uint64, valid bool)
	Fenced       func() bool // another generation replaced this process
	Closing      func() bool // the node is shutting down
	// Stored checks that oids are stored at quorum: api.ErrMissingObject
	// or api.ErrQuorumNotReached when not.
	Stored      func(oids []api.OID) error
	CheckCaller func(ctx *fasthttp.RequestCtx) error           // a replica message comes from a current member
	Context     func(ctx *fasthttp.RequestCtx) context.Context // the context a request's work runs under
	Bodies      *budget.Budget                                 // holds transaction bodies
	CountTxn    func(outcome string)                           // counts a transaction's outcome
}

// Server is a node's part in the ref protocol of docs/refs.md: the newest
// partition records it knows, the epochs it has taken over as primary, and
// its ref store.
type Server struct {
	cfg    Config
	d      Deps
	store  *refstore.Store
	layout atomic.Pointer[api.PartitionConfig]
	kick   chan struct{} // wakes the primary loop

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

// Open opens the ref store in cfg.Dir. Run Watch and PrimaryLoop, and
// Close the Server after both returned.
func Open(cfg Config, d Deps) (*Server, error) {
	st, err := refstore.Open(cfg.Dir, refstore.Options{NoSync: cfg.NoSync})
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, d: d, store: st, kick: make(chan struct{}, 1), parts: map[int]*partState{}}, nil
}

// Layout is the partition configuration, nil until it is known.
func (r *Server) Layout() *api.PartitionConfig { return r.layout.Load() }

// Close closes the ref store.
func (r *Server) Close() error { return r.store.Close() }

func (r *Server) part(id int) *partState {
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
func (r *Server) record(id int) (api.Partition, bool) {
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
func (r *Server) publish(parts map[int]api.Partition) {
	wake := false
	for id, rec := range parts {
		ps := r.part(id)
		ps.adopt(rec)
		cur := ps.rec.Load()
		wake = wake || (cur.Primary == r.cfg.ID && !r.takenOver(ps, cur))
	}
	if wake {
		r.Wake()
	}
}

func (r *Server) Wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// takenOver reports whether this node completed a takeover for rec's epoch
// under its current registration.
func (r *Server) takenOver(ps *partState, rec *api.Partition) bool {
	seq, _ := r.d.Registration()
	return ps.active.Load() == rec.Epoch && ps.leaseSeq.Load() == seq
}

// serving reports whether this node may answer for partition id as its
// primary now: checks 1-4 of docs/refs.md.
func (r *Server) serving(id int) bool {
	ps := r.part(id)
	rec := ps.rec.Load()
	active := ps.active.Load()
	seq, valid := r.d.Registration() // one load: the number and the lease of the same registration
	leased := ps.leaseSeq.Load() == seq && valid
	return rec != nil && rec.Primary == r.cfg.ID && active != 0 && active == rec.Epoch &&
		r.store.Floor(id) <= active && (leased || planted.NoLease) && !r.d.Fenced()
}

// stepDown stops serving partition id until a new takeover.
func (r *Server) stepDown(id int, why string, err error) {
	ps := r.part(id)
	if ps.active.Swap(0) != 0 {
		r.cfg.Logger.Warn("refs: stepping down as primary", "partition", id, "why", why, "err", err)
	}
	r.Wake()
}

// partitionOf maps repo to its partition, or fails before the cluster has
// a partition configuration.
func (r *Server) partitionOf(repo string) (int, error) {
	cfg := r.layout.Load()
	if cfg == nil {
		return 0, api.ErrNoPartitions
	}
	return api.PartitionOf(repo, cfg.Count), nil
}

// watch follows the partition configuration and records until ctx is done.
func (r *Server) Watch(ctx context.Context) {
	for r.layout.Load() == nil && ctx.Err() == nil {
		cfg, ok, err := r.d.Control.PartitionConfig(ctx)
		if err == nil && ok {
			r.layout.Store(&cfg)
			break
		}
		if err == nil {
			r.noConfig.Store(true)
		}
		retry.Sleep(ctx, 500*time.Millisecond)
	}
	r.d.Control.WatchPartitions(ctx, r.publish)
}

// ready returns nil when the ref partitions do not hold this node's
// readiness back (docs/operations.md, Readiness): this node knows the
// partition configuration and every partition's record, and serves as
// primary every partition whose record names it. Without
// Config.ReadyWaitsForPartitions (no planner runs), a configuration found
// absent in etcd also does. Once it held, it latches: losing etcd later
// must not take the cluster out of a load balancer.
func (r *Server) Ready() error {
	if r.wasReady.Load() {
		return nil
	}
	cfg := r.layout.Load()
	switch {
	case cfg == nil && !r.cfg.ReadyWaitsForPartitions && r.noConfig.Load():
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
		case rec.Primary == r.cfg.ID:
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
func (r *Server) primaryOf(id int) (string, bool) {
	rec, ok := r.record(id)
	if !ok || rec.Primary == "" {
		return "", false
	}
	return rec.Primary, true
}

// led lists the partitions whose newest record names this node primary.
func (r *Server) Led() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for id, ps := range r.parts {
		if rec := ps.rec.Load(); rec != nil && rec.Primary == r.cfg.ID {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (r *Server) Report() api.PartitionReport {
	rep := api.PartitionReport{Node: r.cfg.ID, Config: r.layout.Load(), Partitions: []api.PartitionStatus{}}
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

// ServingCount counts the partitions this node serves as primary now.
func (r *Server) ServingCount() int {
	n := 0
	for _, id := range r.Led() {
		if r.serving(id) {
			n++
		}
	}
	return n
}

// summary counts the partitions for /v1/cluster and the status page.
func (r *Server) Summary() *api.PartitionSummary {
	cfg := r.layout.Load()
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
	s.Led, s.Serving = len(r.Led()), r.ServingCount()
	return s
}
