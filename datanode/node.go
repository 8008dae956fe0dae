package datanode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/budget"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/connlimit"
	"github.com/stratum-store/stratum/datanode/git/packcache"
	"github.com/stratum-store/stratum/datanode/hints"
	"github.com/stratum-store/stratum/datanode/httpapi"
	"github.com/stratum-store/stratum/datanode/inflight"
	"github.com/stratum-store/stratum/datanode/nodemetrics"
	"github.com/stratum-store/stratum/datanode/objects"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/refs"
	"github.com/stratum-store/stratum/datanode/repair"
	"github.com/stratum-store/stratum/datanode/stampclock"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// Node is a running data node. Build it with New, then Start it; Close stops
// every goroutine it started and waits for them.
type Node struct {
	cfg        Config
	logger     *slog.Logger
	generation string
	self       ring.Node

	store    *store.Store
	clock    *stampclock.Clock // stamps of writes and deletes; running time
	hints    *hints.Queue      // hinted handoffs this node coordinated (handoff.go)
	refs     *refs.Server
	spoolDir string
	peers    *peer.Client
	obj      *objects.Server // the object protocol: coordinator and replica sides
	rep      *repair.Server  // anti-entropy, scrub, shed, drain, handoff
	metrics  *nodemetrics.Metrics
	http     *httpapi.Router  // routes, auth, limits, the node's own routes and the Git gateway
	packs    *packcache.Cache // full-clone packs (nil: Config.GitPackCache 0)
	bodies   *budget.Budget
	server   *fasthttp.Server
	ln       net.Listener

	view   atomic.Pointer[clusterview.View]
	viewMu sync.Mutex // serialises view writers; never held with another lock
	// reg is the current registration: its lease and its sequence number,
	// swapped as one so that no reader pairs a new lease with the old
	// number (a primary serves only under the registration it took over
	// with, and only while that lease is valid).
	reg      atomic.Pointer[registration]
	regCount atomic.Uint64
	fenced   atomic.Bool
	secret   string        // the cluster secret (Auth without TLS)
	refresh  chan struct{} // asks the ring loop to reload the ring now
	closing  atomic.Bool
	// life is the node's lifetime context, cancelled by Close. Coordinated
	// requests run under it rather than under the fasthttp RequestCtx, which
	// is recycled when the handler returns while replica calls may still run.
	life     context.Context
	cancel   context.CancelFunc
	loops    sync.WaitGroup // ring watcher, lease keeper, server
	inflight inflight.Group // replica calls still running after a reply
}

// New validates cfg and builds a node; nothing is opened until Start.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RegisterTimeout == 0 {
		cfg.RegisterTimeout = 2*cfg.LeaseTTL + 5*time.Second
	}
	gen := uuid.NewString()
	n := &Node{
		bodies:     budget.New(cfg.MaxBodyMemory, api.ErrBusy),
		cfg:        cfg,
		generation: gen,
		logger:     logger.With("node", cfg.ID, "generation", gen),
		refresh:    make(chan struct{}, 1),
	}
	n.view.Store(&clusterview.View{})
	return n, nil
}

// Start opens the store, listens, registers with the control plane, joins the
// ring and starts serving. On error everything opened is closed again.
func (n *Node) Start(ctx context.Context) (err error) {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.life, n.cancel = lctx, cancel
	defer func() {
		if err != nil {
			n.Close(context.WithoutCancel(ctx))
		}
	}()
	if err := n.openStore(); err != nil {
		return err
	}
	if err := n.openHints(); err != nil {
		return err
	}
	if err := n.listen(); err != nil {
		return err
	}
	// Without TLS a node proves itself to its peers with the cluster
	// secret; it presents it even with auth off, so peers that have auth
	// on accept its calls and auth can be turned on one node at a time.
	if n.cfg.TLS == nil {
		if n.secret, err = n.cfg.Control.ClusterSecret(ctx); err != nil {
			return fmt.Errorf("datanode: cluster secret: %w", err)
		}
	}
	n.metrics = nodemetrics.New()
	n.peers = n.newPeers()
	n.obj = n.newObjects()
	n.rep = n.newRepair()
	if n.refs, err = n.openRefs(); err != nil {
		return fmt.Errorf("datanode: open ref store: %w", err)
	}
	if n.cfg.GitPackCache > 0 {
		if n.packs, err = packcache.Open(filepath.Join(n.cfg.Store.Dir, "packcache"), n.cfg.GitPackCache); err != nil {
			return fmt.Errorf("datanode: open pack cache: %w", err)
		}
	}
	n.http = n.newRouter()
	n.server = n.http.NewServer()
	if n.cfg.Auth {
		n.goLoop(func() { n.http.WatchTokens(lctx) })
	}
	n.goLoop(func() { n.serve() })
	if err := n.register(ctx); err != nil {
		return err
	}
	if err := n.joinRing(ctx); err != nil {
		return err
	}
	n.goLoop(func() { n.watchRing(lctx) })
	n.rep.StartRepairWatch(lctx) // before anything that moves objects (drain, repair)
	n.goLoop(func() { n.watchMembers(lctx) })
	n.goLoop(func() { n.keepRegistered(lctx) })
	n.goLoop(func() { n.rep.ScrubLoop(lctx) })
	n.goLoop(func() { n.rep.TombstoneLoop(lctx) })
	n.goLoop(func() { n.rep.ValueLogLoop(lctx) })
	n.goLoop(func() { n.rep.HandoffLoop(lctx) })
	n.goLoop(func() { n.rep.AntiEntropyLoop(lctx) })
	n.goLoop(func() { n.rep.SettleLoop(lctx) })
	n.goLoop(func() { n.rep.RecoveryLoop(lctx) })
	n.goLoop(func() { n.refs.Watch(lctx) })
	n.goLoop(func() { n.refs.PrimaryLoop(lctx) })
	n.goLoop(func() { n.http.SampleLoop(lctx) })
	if err := n.cfg.Control.MarkActive(ctx, n.cfg.ID, n.generation); err != nil {
		return fmt.Errorf("datanode: mark active: %w", err)
	}
	n.logger.Info("data node started", "addr", n.self.Addr, "ring_revision", n.Ring().Revision())
	return nil
}

// newPeers builds the client of the other nodes from the configuration.
func (n *Node) newPeers() *peer.Client {
	return peer.New(peer.Options{
		ID: n.cfg.ID, Generation: n.generation, TLS: n.cfg.PeerTLS, Secret: n.secret,
		IdleTimeout: n.cfg.IdleTimeout, BreakerThreshold: n.cfg.BreakerThreshold, BreakerCooldown: n.cfg.BreakerCooldown,
		Retries: n.cfg.PeerRetries, RetryBackoff: n.cfg.RetryBackoff,
		Fence: n.fence,
		Observe: func(addr, outcome string, took time.Duration) {
			n.metrics.ReplicaLatency.WithLabelValues(addr, outcome).Observe(took.Seconds())
		},
	})
}

// openRefs opens this node's part of the ref protocol (package refs),
// wired to the rest of the node through refs.Deps.
func (n *Node) openRefs() (*refs.Server, error) {
	cfg := refs.Config{ID: n.cfg.ID, Dir: filepath.Join(n.cfg.Store.Dir, "refs"), NoSync: n.cfg.Store.NoSync,
		Timeout: n.cfg.RefTimeout, RetryWindow: n.cfg.RefRetryWindow, CheckInterval: n.cfg.RefCheckInterval,
		ReadyWaitsForPartitions: n.cfg.ReadyWaitsForPartitions, Logger: n.logger}
	return refs.Open(cfg, refs.Deps{
		Control:      n.cfg.Control,
		Peers:        n.peers,
		View:         n.view.Load,
		Registration: n.registration,
		Fenced:       n.fenced.Load,
		Closing:      n.closing.Load,
		Stored:       n.obj.StoredAtQuorum,
		CheckCaller:  n.checkGeneration,
		Context:      n.obj.RequestContext,
		Bodies:       n.bodies,
		CountTxn:     func(outcome string) { n.metrics.RefTxns.WithLabelValues(outcome).Inc() },
	})
}

// newObjects builds this node's part in the object protocol (package
// objects), wired to the rest of the node through objects.Deps.
func (n *Node) newObjects() *objects.Server {
	cfg := objects.Config{ID: n.cfg.ID, Addr: n.self.Addr, PeerTimeout: n.cfg.PeerTimeout, PeerMinRate: n.cfg.PeerMinRate,
		StaleRetries: n.cfg.StaleRetries, HedgeDelay: n.cfg.HedgeDelay, Store: n.cfg.Store}
	return objects.New(cfg, objects.Deps{
		Logger: n.logger, Life: n.life, Store: n.store, Clock: n.clock, Hints: n.hints, SpoolDir: n.spoolDir,
		Peers: n.peers, Metrics: n.metrics, Bodies: n.bodies, View: n.view.Load, Fenced: n.fenced.Load,
		Inflight: &n.inflight, Ready: n.Ready, CheckCaller: n.checkGeneration, Refresh: n.requestRefresh,
		ReloadRing: n.reloadRing,
	})
}

// newRepair builds this node's repair loops (package repair), wired to the
// rest of the node through repair.Deps.
func (n *Node) newRepair() *repair.Server {
	c := n.cfg
	cfg := repair.Config{ID: c.ID, Store: c.Store, PeerTimeout: c.PeerTimeout, PeerMinRate: c.PeerMinRate,
		AntiEntropyInterval: c.AntiEntropyInterval, AntiEntropyRate: c.AntiEntropyRate, ScrubInterval: c.ScrubInterval,
		ScrubRate: c.ScrubRate, HintInterval: c.HintInterval, HintRate: c.HintRate, HintMaxAge: c.HintMaxAge,
		HealthyMarkInterval: c.HealthyMarkInterval, ValueLogGCInterval: c.ValueLogGCInterval, TombstoneGrace: c.TombstoneGrace}
	return repair.New(cfg, repair.Deps{
		Logger: n.logger, Life: n.life, Control: c.Control, Generation: n.generation,
		Self: func() ring.Node { return n.self }, Store: n.store, Clock: n.clock, Hints: n.hints, Peers: n.peers,
		Objects: n.obj, Metrics: n.metrics, Bodies: n.bodies, View: n.view.Load, Fenced: n.fenced.Load,
		Ready: n.Ready, LeaseValid: n.leaseValid, Go: n.goLoop, Settle: n.settle, PeerStatus: func(ns api.NodeStatus) (api.StatusDoc, bool) { return n.http.PeerStatus(ns) },
	})
}

// newRouter builds this node's HTTP side (package httpapi), wired to the
// rest of the node through httpapi.Deps.
func (n *Node) newRouter() *httpapi.Router {
	c := n.cfg
	cfg := httpapi.Config{ID: c.ID, Zone: c.Zone, Auth: c.Auth, Pprof: c.Pprof, TLS: c.TLS, PeerTLS: c.PeerTLS,
		HeaderTimeout: c.HeaderTimeout, RequestTimeout: c.RequestTimeout, IdleTimeout: c.IdleTimeout,
		MinBodyRate: c.MinBodyRate, MaxHeaderBytes: c.MaxHeaderBytes, MaxInflight: c.MaxInflight, Store: c.Store}
	return httpapi.New(cfg, httpapi.Deps{
		Logger: n.logger, Life: n.life, Control: c.Control, Generation: n.generation, Self: n.self, Secret: n.secret,
		Store: n.store, Hints: n.hints, Peers: n.peers, Objects: n.obj, Refs: n.refs, Repair: n.rep,
		Metrics: n.metrics, Bodies: n.bodies, View: n.view.Load, Inflight: &n.inflight, SpoolDir: n.spoolDir, PackCache: n.packs,
		Ready: n.Ready, Fenced: n.Fenced, ControlPlaneOK: n.ControlPlaneOK,
	})
}

// Status describes this node.
func (n *Node) Status() api.StatusDoc { return n.http.Status() }

// Cluster describes every node as the control plane records it (see
// httpapi.Router.Cluster).
func (n *Node) Cluster(ctx context.Context) api.ClusterDoc { return n.http.Cluster(ctx) }

// Readiness is nil when the node is ready (docs/operations.md, Readiness),
// or says why not, wrapping api.ErrNotReady (httpapi.Router.Readiness).
func (n *Node) Readiness() error { return n.http.Readiness() }

// LocalEntry returns what this node's own store holds for oid (a copy with
// its stamp, a tombstone, or store.ErrNotFound) without asking any peer:
// for tests and diagnostics.
func (n *Node) LocalEntry(ctx context.Context, oid api.OID) (store.Entry, error) {
	return n.store.Meta(ctx, oid)
}

// BadRecordSource is what a ControlPlane may also offer: how many records
// under each key prefix it skipped (see httpapi.BadRecordSource).
type BadRecordSource = httpapi.BadRecordSource

// registration is the current registration's sequence number and whether
// its lease surely has not expired in etcd, from one load.
func (n *Node) registration() (seq uint64, valid bool) {
	reg := n.reg.Load()
	if reg == nil {
		return 0, false
	}
	return reg.seq, reg.alive() && time.Now().Before(reg.lease.ValidUntil())
}

// leaseValid reports whether the current registration's lease surely has
// not expired in etcd.
func (n *Node) leaseValid() bool {
	_, valid := n.registration()
	return valid
}

// openHints opens the queue of hinted handoffs (package hints): the
// object protocol records them, the repair loops deliver them.
func (n *Node) openHints() error {
	q, err := hints.Open(filepath.Join(n.cfg.Store.Dir, "hints"), hints.Options{
		MaxPerPeer: n.cfg.HintMaxPerPeer, MaxAge: n.cfg.HintMaxAge, NoSync: n.cfg.Store.NoSync,
	})
	if err != nil {
		return fmt.Errorf("datanode: open hints: %w", err)
	}
	n.hints = q
	return nil
}

func (n *Node) openStore() error {
	st, err := store.Open(n.cfg.Store)
	if err != nil {
		return fmt.Errorf("datanode: open store: %w", err)
	}
	n.store = st
	n.clock = stampclock.New(n.cfg.Clock, n.cfg.Store.Dir, n.logger)
	n.spoolDir = filepath.Join(n.cfg.Store.Dir, "spool")
	if err := os.RemoveAll(n.spoolDir); err != nil {
		return fmt.Errorf("datanode: clean spool: %w", err)
	}
	return os.MkdirAll(n.spoolDir, 0o755)
}

func (n *Node) listen() error {
	ln, err := net.Listen("tcp", n.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("datanode: listen %s: %w", n.cfg.ListenAddr, err)
	}
	if n.cfg.TLS != nil {
		ln = tls.NewListener(ln, n.cfg.TLS)
	}
	n.ln = connlimit.New(ln, n.cfg.MaxConns)
	addr := n.cfg.AdvertiseAddr
	if addr == "" {
		addr = ln.Addr().String()
	}
	n.self = ring.Node{ID: n.cfg.ID, Addr: addr, Zone: n.cfg.Zone}
	return nil
}

func (n *Node) serve() {
	if err := n.server.Serve(n.ln); err != nil && !n.closing.Load() {
		n.logger.Error("server stopped", "err", err)
	}
}

func (n *Node) register(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, n.cfg.RegisterTimeout)
	defer cancel()
	l, err := n.cfg.Control.Register(rctx, n.self, n.generation, n.cfg.LeaseTTL)
	if err != nil {
		return fmt.Errorf("datanode: register: %w", err)
	}
	n.setLease(l)
	return nil
}

// registration is one registration of this process: a lease and the
// number that tells it from the ones before.
type registration struct {
	lease Lease
	seq   uint64
}

// alive reports whether the registration's lease has not been lost (a nil
// registration, before the first, is not alive).
func (r *registration) alive() bool {
	if r == nil {
		return false
	}
	select {
	case <-r.lease.Done():
		return false
	default:
		return true
	}
}

// setLease installs l as a new registration.
func (n *Node) setLease(l Lease) {
	n.reg.Store(&registration{lease: l, seq: n.regCount.Add(1)})
}

func (n *Node) joinRing(ctx context.Context) error {
	if err := n.cfg.Control.JoinRing(ctx, n.self, n.cfg.Ring); err != nil {
		return fmt.Errorf("datanode: join ring: %w", err)
	}
	r, err := n.cfg.Control.LoadRing(ctx)
	if err != nil {
		return fmt.Errorf("datanode: load ring: %w", err)
	}
	n.publishRing(r)
	return nil
}

func (n *Node) goLoop(f func()) {
	n.loops.Add(1)
	go func() {
		defer n.loops.Done()
		f()
	}()
}

// Close stops serving, waits for replica calls still in flight, releases the
// registration and closes the store. It is safe to call more than once.
func (n *Node) Close(ctx context.Context) error {
	if n.closing.Swap(true) {
		return nil
	}
	var errs []error
	// 1. Stop taking requests; those in flight get a bounded grace (a
	// client stuck mid-request would otherwise hold Close for the whole
	// request timeout).
	if n.server != nil {
		sctx, cancel := context.WithTimeout(ctx, n.cfg.ShutdownGrace)
		if err := n.server.ShutdownWithContext(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
		cancel()
	}
	if n.ln != nil {
		n.ln.Close() // also when Serve had not started yet
	}
	// 2. Replica calls still running after their replies: each ends by its
	// deadline; the node's context stays live until they are done.
	n.inflight.Stop()
	// 3. Then the loops, the registration and the store.
	if n.cancel != nil {
		n.cancel()
	}
	if r := n.reg.Load(); r != nil {
		errs = append(errs, r.lease.Close(ctx))
	}
	n.loops.Wait()
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.refs != nil {
		errs = append(errs, n.refs.Close())
	}
	if n.hints != nil {
		errs = append(errs, n.hints.Close())
	}
	n.logger.Info("data node stopped")
	return errors.Join(errs...)
}

// Addr is the address the node advertises.
func (n *Node) Addr() string { return n.self.Addr }

// ID is the node's ID.
func (n *Node) ID() string { return n.cfg.ID }

// Generation is this process's generation ID.
func (n *Node) Generation() string { return n.generation }

// Ring is the ring the node currently uses (nil before Start).
func (n *Node) Ring() *ring.Ring { return n.view.Load().Ring }

// Ready reports whether the node can coordinate writes: it has a ring, is
// not fenced and not closing. Losing etcd does not make it unready.
func (n *Node) Ready() bool {
	return n.Ring() != nil && !n.fenced.Load() && !n.closing.Load()
}

// Fenced reports whether this generation was replaced or declared DOWN.
func (n *Node) Fenced() bool { return n.fenced.Load() }

// ControlPlaneOK reports whether the node's registration lease is alive,
// i.e. it reaches etcd.
func (n *Node) ControlPlaneOK() bool {
	return n.reg.Load().alive()
}
