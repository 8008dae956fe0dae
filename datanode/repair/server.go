package repair

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/budget"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/hints"
	"github.com/stratum-store/stratum/datanode/nodemetrics"
	"github.com/stratum-store/stratum/datanode/objects"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/stampclock"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// Config is what the repair loops need to know; the data node fills it
// from its own Config, whose fields of the same names document each.
type Config struct {
	ID                  string
	Store               store.Config
	PeerTimeout         time.Duration
	PeerMinRate         int64
	AntiEntropyInterval time.Duration
	AntiEntropyRate     int
	ScrubInterval       time.Duration
	ScrubRate           int
	HintInterval        time.Duration
	HintRate            int
	HintMaxAge          time.Duration
	HealthyMarkInterval time.Duration
	ValueLogGCInterval  time.Duration
	TombstoneGrace      time.Duration
}

// Control is what the repair loops need from the control plane: the
// cluster-wide pause, and the record that a drain is done.
type Control interface {
	MarkDrained(ctx context.Context, id, generation string) error
	SetRepairPaused(ctx context.Context, paused bool) error
	WatchRepairPaused(ctx context.Context, publish func(bool)) error
}

// Deps are the parts of the data node the repair loops use.
type Deps struct {
	Logger     *slog.Logger
	Life       context.Context // the node's lifetime
	Control    Control
	Generation string // this process's generation (a drain is recorded under it)
	Self       func() ring.Node
	Store      *store.Store
	Clock      *stampclock.Clock
	Hints      *hints.Queue
	Peers      *peer.Client
	Objects    *objects.Server // copies, reads and tombstones go through the object protocol
	Metrics    *nodemetrics.Metrics
	Bodies     *budget.Budget
	View       func() *clusterview.View // the node's current view
	Fenced     func() bool              // another generation replaced this process
	Ready      func() bool              // the node can coordinate
	LeaseValid func() bool              // the node's lease surely has not expired
	Go         func(f func())           // runs f as one of the node's loops (Close waits for it)
	Settle     func(rev int64)          // moves up to ring revision rev are finished everywhere
	PeerStatus func(api.NodeStatus) (api.StatusDoc, bool)
}

// Server is a node's repair: anti-entropy with its peers (and the rounds
// that follow a ring change or a return from downtime), the scrubber,
// shedding of copies the ring no longer places here, draining, hinted
// handoff delivery, the store's own collectors, and the cluster-wide
// pause that holds them all.
type Server struct {
	cfg     Config
	d       Deps
	logger  *slog.Logger
	life    context.Context
	store   *store.Store
	clock   *stampclock.Clock
	hints   *hints.Queue
	peers   *peer.Client
	obj     *objects.Server
	metrics *nodemetrics.Metrics
	bodies  *budget.Budget
	view    func() *clusterview.View // the node's current view
	fenced  func() bool

	draining atomic.Bool
	repair   repairState
	// Anti-entropy totals (antientropy.go): objects pushed to and pulled
	// from peers, and when the last round ended (unix ns, 0 = never).
	aePushed    atomic.Int64
	aePulled    atomic.Int64
	aeLastRound atomic.Int64
	shedKept    atomic.Int64 // copies placed elsewhere still held after the last shed round (shed.go)
	settled     atomic.Int64 // ring revision of the last shed round that left nothing misplaced (settle.go)
	lastScrub   atomic.Int64 // unix nanoseconds the last complete scrub pass ended
	downtime    atomic.Int64 // nanoseconds away before this start (recovery.go)
	recoveredAt atomic.Int64 // unix nanoseconds the recovery round finished
}

// New builds a node's repair; it starts nothing: the node runs each loop.
func New(cfg Config, d Deps) *Server {
	return &Server{cfg: cfg, d: d, logger: d.Logger, life: d.Life, store: d.Store, clock: d.Clock, hints: d.Hints,
		peers: d.Peers, obj: d.Objects, metrics: d.Metrics, bodies: d.Bodies, view: d.View, fenced: d.Fenced}
}

// Ring is the ring of the node's current view.
func (n *Server) Ring() *ring.Ring { return n.view().Ring }

// Draining reports whether this node is draining its copies away.
func (n *Server) Draining() bool { return n.draining.Load() }

// Paused reports whether repair and rebalancing are paused cluster-wide.
func (n *Server) Paused() bool { return n.repair.paused.Load() }

// Progress is the current (or last) anti-entropy round's progress.
func (n *Server) Progress() api.RepairProgress { return n.repair.progress() }

// FillStatus writes the repair figures of this node's status document.
func (n *Server) FillStatus(doc *api.StatusDoc) {
	doc.AEPushed, doc.AEPulled = n.aePushed.Load(), n.aePulled.Load()
	doc.Misplaced, doc.SettledRevision = n.shedKept.Load(), n.settled.Load()
	doc.AELastRound = unixTime(n.aeLastRound.Load())
	doc.DowntimeSeconds = time.Duration(n.downtime.Load()).Seconds()
	doc.Repair = n.repair.progress()
	doc.LastScrub = unixTime(n.lastScrub.Load())
	doc.RecoveredAt = unixTime(n.recoveredAt.Load())
}

// unixTime is the UTC time of ns unix nanoseconds; nil for 0 (never).
func unixTime(ns int64) *time.Time {
	if ns == 0 {
		return nil
	}
	t := time.Unix(0, ns).UTC()
	return &t
}
