package httpapi

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/budget"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/git/packcache"
	"github.com/stratum-store/stratum/datanode/hints"
	"github.com/stratum-store/stratum/datanode/inflight"
	"github.com/stratum-store/stratum/datanode/nodemetrics"
	"github.com/stratum-store/stratum/datanode/objects"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/refs"
	"github.com/stratum-store/stratum/datanode/repair"
	"github.com/stratum-store/stratum/datanode/series"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// Config is what the HTTP side needs to know; the data node fills it from
// its own Config, whose fields of the same names document each.
type Config struct {
	ID, Zone       string
	Auth           bool
	Pprof          bool
	TLS, PeerTLS   *tls.Config
	HeaderTimeout  time.Duration
	RequestTimeout time.Duration
	IdleTimeout    time.Duration
	MinBodyRate    int64
	MaxHeaderBytes int
	MaxInflight    int
	Store          store.Config
}

// Control is what the HTTP side needs from the control plane: the node
// list (status, cluster and admin routes), the admin actions, and the API
// tokens. A Control that is also a BadRecordSource has its counts
// exported.
type Control interface {
	NodeList(ctx context.Context) ([]api.NodeStatus, error)
	Drain(ctx context.Context, id string) error
	Remove(ctx context.Context, id string, force bool) error
	WatchTokens(ctx context.Context, publish func(map[string]api.Token)) error
}

// Deps are the parts of the data node the HTTP side serves from.
type Deps struct {
	Logger     *slog.Logger
	Life       context.Context // the node's lifetime
	Control    Control
	Generation string
	Self       ring.Node
	Secret     string // the cluster secret (auth without TLS)
	Store      *store.Store
	Hints      *hints.Queue
	Peers      *peer.Client
	Objects    *objects.Server
	Refs       *refs.Server
	Repair     *repair.Server
	Metrics    *nodemetrics.Metrics
	Bodies     *budget.Budget
	View       func() *clusterview.View // the node's current view
	Inflight   *inflight.Group
	SpoolDir   string
	PackCache  *packcache.Cache // full-clone packs; nil: none
	Ready      func() bool      // the node can coordinate (a ring, not fenced, not closing)
	Fenced     func() bool      // this generation was replaced or declared DOWN
	// ControlPlaneOK reports whether the node's registration lease is
	// alive.
	ControlPlaneOK func() bool
}

// Router is a data node's HTTP side: the route table and the router that
// serves it (every request passes the cross-site check, authorization,
// the content-type check and the in-flight limit first), the node's own
// routes (health, readiness, status, cluster, ring, admin, the status page
// and metrics), and the Git gateway. The object, ref and repair routes it
// hands to their packages.
type Router struct {
	cfg        Config
	d          Deps
	logger     *slog.Logger
	life       context.Context
	generation string
	self       ring.Node
	secret     string
	store      *store.Store
	hints      *hints.Queue
	peers      *peer.Client
	obj        *objects.Server
	refs       *refs.Server
	rep        *repair.Server
	metrics    *metrics
	bodies     *budget.Budget
	view       func() *clusterview.View // the node's current view
	inflight   *inflight.Group
	spoolDir   string

	errors  errorLog        // recent server-side errors, for the status page
	samples *series.Sampler // the status page's charts (samples.go)
	active  atomic.Int64    // client requests being served (Config.MaxInflight)
	// tokens are the API token records by id (Config.Auth), swapped whole
	// on every change.
	tokens atomic.Pointer[map[string]api.Token]
}

// New builds the HTTP side of a node and registers its gauges with
// d.Metrics; NewServer then makes the fasthttp server that serves it.
func New(cfg Config, d Deps) *Router {
	n := &Router{cfg: cfg, d: d, logger: d.Logger, life: d.Life, generation: d.Generation, self: d.Self,
		secret: d.Secret, store: d.Store, hints: d.Hints, peers: d.Peers, obj: d.Objects, refs: d.Refs,
		rep: d.Repair, bodies: d.Bodies, view: d.View, inflight: d.Inflight, spoolDir: d.SpoolDir,
		samples: series.NewSampler()}
	n.metrics = newMetrics(n)
	return n
}

// Ring is the ring of the node's current view.
func (n *Router) Ring() *ring.Ring { return n.view().Ring }

// Ready, Fenced and ControlPlaneOK report the node's state (Deps).
func (n *Router) Ready() bool          { return n.d.Ready() }
func (n *Router) Fenced() bool         { return n.d.Fenced() }
func (n *Router) ControlPlaneOK() bool { return n.d.ControlPlaneOK() }

// Addr is the address the node advertises.
func (n *Router) Addr() string { return n.self.Addr }
