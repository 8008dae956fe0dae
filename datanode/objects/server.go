package objects

import (
	"context"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/datanode/budget"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/hints"
	"github.com/stratum-store/stratum/datanode/inflight"
	"github.com/stratum-store/stratum/datanode/nodemetrics"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/stampclock"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// Config is what the object protocol needs to know; the data node fills it
// from its own Config.
type Config struct {
	ID, Addr string // this node's ID and advertised address
	// PeerTimeout bounds one replica call for an object up to 1 MiB;
	// larger objects get PeerTimeout + size / PeerMinRate seconds.
	PeerTimeout time.Duration
	PeerMinRate int64
	// StaleRetries bounds how often a request refused for a stale ring is
	// retried after reloading the ring.
	StaleRetries int
	// HedgeDelay: a read asks one more replica when one it asked has not
	// answered within it.
	HedgeDelay time.Duration
	Store      store.Config // the object size limits and the large-object threshold
}

// Deps are the parts of the data node the object protocol uses: its
// store, clock and peers, the node's view and state it reads but does not
// own, and the few things it asks the node to do.
type Deps struct {
	Logger   *slog.Logger
	Life     context.Context // the node's lifetime: coordinated work outlives its request under it
	Store    *store.Store
	Clock    *stampclock.Clock // stamps of writes and deletes
	Hints    *hints.Queue      // hinted handoffs this node coordinated
	SpoolDir string            // where large bodies are spooled
	Peers    *peer.Client
	Metrics  *nodemetrics.Metrics
	Bodies   *budget.Budget           // request bodies held in memory
	View     func() *clusterview.View // the node's current view
	Fenced   func() bool              // another generation replaced this process
	Inflight *inflight.Group          // calls still running after a reply; Close waits for them
	Ready    func() bool              // the node can coordinate (a ring, not fenced, not closing)
	// CheckCaller admits a replica call from a current member
	// (generation and state).
	CheckCaller func(ctx *fasthttp.RequestCtx) error
	Refresh     func()                    // asks the ring loop to reload the ring soon
	ReloadRing  func(ctx context.Context) // reloads the ring now
}

// Server is a node's part in the object protocol of docs/consistency.md,
// both as the coordinator of a request (placement, fan-out at a
// consistency level, stamps, read repair, hints) and as a replica of
// other coordinators' calls (fenced by ring revision and generation).
type Server struct {
	cfg       Config
	d         Deps
	logger    *slog.Logger
	life      context.Context
	store     *store.Store
	clock     *stampclock.Clock
	hints     *hints.Queue
	spoolDir  string
	peers     *peer.Client
	metrics   *nodemetrics.Metrics
	bodies    *budget.Budget
	view      func() *clusterview.View // the node's current view
	fenced    func() bool
	inflight  *inflight.Group
	writes    *batcher[*pendingWrite] // small replica writes, per peer
	presenceQ *batcher[*pendingHas]   // a quorum GET's presence questions, per peer
}

// New builds the object protocol's side of a node; it starts nothing.
func New(cfg Config, d Deps) *Server {
	n := &Server{cfg: cfg, d: d, logger: d.Logger, life: d.Life, store: d.Store, clock: d.Clock, hints: d.Hints,
		spoolDir: d.SpoolDir, peers: d.Peers, metrics: d.Metrics, bodies: d.Bodies, view: d.View, fenced: d.Fenced,
		inflight: d.Inflight}
	n.writes = newBatcher(coalesceInflight, n.deliverWrites)
	n.presenceQ = newBatcher(presenceInflight, n.deliverHas)
	return n
}

// Ring is the ring of the node's current view.
func (n *Server) Ring() *ring.Ring { return n.view().Ring }
