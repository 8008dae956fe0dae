package datanode

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// Config configures a Node.
type Config struct {
	// ID names the node in the ring; stable across restarts. Required.
	ID string
	// ListenAddr is the host:port to listen on. Required.
	ListenAddr string
	// AdvertiseAddr is the host:port peers and clients reach this node at;
	// default ListenAddr (after a ":0" port is resolved).
	AdvertiseAddr string
	// Zone is the node's failure domain; replicas go to distinct zones first.
	Zone string
	// Store configures the local storage engine; Store.Dir is required.
	Store store.Config
	// Ring is the replication factor and vnode count proposed when this node
	// creates the ring; joining an existing ring requires the same values.
	Ring ring.Config
	// Control is the control plane. Required.
	Control ControlPlane
	// LeaseTTL is the lifetime of the node's registration lease; if it is not
	// renewed for this long the node counts as gone. Default 5s.
	LeaseTTL time.Duration
	// RegisterTimeout bounds how long Start waits for a previous generation's
	// lease to expire. Default 2*LeaseTTL + 5s.
	RegisterTimeout time.Duration
	// PeerTimeout bounds one replica call for an object up to 1 MiB.
	// Default 5s. Larger objects get PeerTimeout + size / PeerMinRate.
	PeerTimeout time.Duration
	// PeerMinRate is the slowest transfer rate, in bytes/s, a peer may have
	// before a large transfer times out. Default 8 MiB/s.
	PeerMinRate int64
	// StaleRetries bounds how often a request refused for a stale ring is
	// retried after reloading the ring; default 3.
	StaleRetries int
	// BreakerThreshold consecutive transport failures open a peer's circuit
	// breaker; default 5. BreakerCooldown later one probe is let through;
	// default 2s.
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// PeerRetries is how many times a replica call that got no answer at all
	// is retried, after RetryBackoff doubling with full jitter; defaults 2
	// and 20ms. Only idempotent calls are retried (all replica calls are:
	// objects are content-addressed).
	PeerRetries  int
	RetryBackoff time.Duration
	// HedgeDelay: a read asks one more replica when one it asked has not
	// answered within this delay; default 20ms.
	HedgeDelay time.Duration
	// RequestTimeout bounds a whole client request, including the body
	// upload; default 5 minutes.
	RequestTimeout time.Duration
	// ShutdownGrace bounds how long Close waits for requests in flight;
	// default 5s.
	ShutdownGrace time.Duration
	// IdleTimeout closes keep-alive connections idle for this long; default 60s.
	IdleTimeout time.Duration
	// TLS, when set, makes the node serve HTTPS with it (pki.ServerConfig:
	// client certificates verified when given) and accept node-to-node
	// calls (/internal/) only from callers whose certificate verified.
	// PeerTLS is then what the node calls its peers with (pki.ClientConfig:
	// its own certificate as the client certificate). Both or neither.
	TLS, PeerTLS *tls.Config
	// Auth turns on API tokens (docs/security.md): every request except
	// /healthz and /readyz needs a token whose scopes cover it (401
	// unauthenticated, 403 forbidden), and node-to-node calls need a
	// verified node certificate (with TLS) or the cluster secret.
	Auth bool
	// HeaderTimeout: a request's header must arrive within this long (from
	// the connection's opening, or from a keep-alive request's first byte);
	// default 10s. A slow-header client is cut off after it.
	HeaderTimeout time.Duration
	// MinBodyRate is the slowest body upload accepted, in bytes per second:
	// a body of L bytes must arrive within HeaderTimeout + L/MinBodyRate of
	// its header (never longer than RequestTimeout; a chunked body gets
	// RequestTimeout). Default 256 KiB/s. A slow-body client is cut off.
	MinBodyRate int64
	// MaxInflight caps the client requests a node serves at once; beyond
	// it a request gets 429 busy at once. Node-to-node calls (/internal/)
	// and /healthz, /readyz and /metrics are not counted. Default 4096.
	MaxInflight int
	// MaxConns caps the connections open at once, clients' and peers'
	// together; one more is answered 429 busy and closed. Each holds a
	// goroutine and buffers (MaxHeaderBytes to read, 4 KiB to write), so
	// this bounds that memory. Default 10,000.
	MaxConns int
	// MaxHeaderBytes bounds a request's line and header together; a larger
	// one gets 413 too_large and the connection is closed. Default 8 KiB,
	// at least 4 KiB.
	MaxHeaderBytes int
	// MaxBodyMemory bounds the bytes of request bodies held in memory at
	// once (objects up to Store.LargeThreshold, batches, replica writes);
	// a request that would exceed it gets 429 busy. Larger bodies are
	// spooled to disk and not counted. Default 256 MiB; at least
	// api.MaxBatchBytes so one batch always fits.
	MaxBodyMemory int64
	// GitPackCache bounds, in bytes, the packs of full clones this node
	// keeps in <Store.Dir>/packcache to serve the next clone of the same
	// tips (docs/git.md, Pack cache). Default 1 GiB; 0 turns it off.
	GitPackCache int64
	// ScrubInterval is how often every local copy is re-verified; default
	// 24h, 0 turns scrubbing off. ScrubRate caps it in objects per second;
	// default 200.
	ScrubInterval time.Duration
	ScrubRate     int
	// ValueLogGCInterval is how often the store's value log is collected:
	// segments at least half garbage (deleted, removed or moved objects)
	// are rewritten and deleted (store.CollectValueLog). Default 10m; 0
	// turns it off.
	ValueLogGCInterval time.Duration
	// RefTimeout bounds one ref protocol message to a peer (docs/refs.md);
	// default 2s. RefRetryWindow is how long a node keeps retrying a ref
	// request while its partition has no serving primary (a failover);
	// default 3s. RefCheckInterval is how often a primary looks for
	// partitions to take over or members to catch up; default 1s.
	RefTimeout       time.Duration
	RefRetryWindow   time.Duration
	RefCheckInterval time.Duration
	// ReadyWaitsForPartitions makes readiness (/readyz) wait for the ref
	// partitions: their configuration, every record, and the partitions
	// this node is primary of served (docs/operations.md, Readiness).
	// Default true: every cluster the CLI starts runs a partition planner
	// on its detector leader. Set it false only where no planner runs (then
	// readiness waits for partitions only once a configuration exists).
	ReadyWaitsForPartitions bool
	// HintInterval is how often the hinted-handoff loop delivers hints to
	// peers that are back; default 1s. HintRate caps delivery in objects per
	// second; default 200. HintMaxAge is how long a hint is kept before it
	// expires (anti-entropy covers it then); default 3h. HintMaxPerPeer
	// bounds the hints kept for one peer; further ones are dropped and
	// counted; default 100000.
	HintInterval   time.Duration
	HintRate       int
	HintMaxAge     time.Duration
	HintMaxPerPeer int
	// AntiEntropyInterval is how often the node compares, with each peer,
	// the objects the ring places on both and copies what either lacks;
	// default 10m, 0 turns anti-entropy off (the node still answers its
	// peers). AntiEntropyRate caps the objects it copies per second;
	// default 200.
	AntiEntropyInterval time.Duration
	AntiEntropyRate     int
	// HealthyMarkInterval is how often a ready node records, atomically, that
	// it is healthy (<Store.Dir>/healthy); after a restart the time since
	// then is its downtime, and a repair round runs at once. Default 10s.
	HealthyMarkInterval time.Duration
	// TombstoneGrace is how long a deleted object's tombstone is kept
	// (docs/repair.md, "Deletes"): while it is, no repair can bring the
	// object back. It is measured in this node's running time, which a
	// wall-clock jump cannot shorten, and must exceed HintMaxAge and
	// AntiEntropyInterval. Default 7 days. A node down for longer must be
	// wiped before it returns.
	TombstoneGrace time.Duration
	// Clock is the wall clock that stamps writes and deletes (api.Stamp);
	// default time.Now. Stamps never go back even if it does; tests
	// inject a skewed clock here.
	Clock func() time.Time
	// Pprof serves Go's profiles under /debug/pprof/ (off by default: they
	// expose internals).
	Pprof bool
	// Logger; default discard.
	Logger *slog.Logger
}

// DefaultConfig returns a configuration with every default filled in; the
// caller sets ID, ListenAddr, Store.Dir and Control.
func DefaultConfig() Config {
	return Config{
		Store:               store.DefaultConfig(""),
		Ring:                ring.DefaultConfig(),
		LeaseTTL:            5 * time.Second,
		PeerTimeout:         5 * time.Second,
		PeerMinRate:         8 << 20,
		StaleRetries:        3,
		BreakerThreshold:    5,
		BreakerCooldown:     2 * time.Second,
		PeerRetries:         2,
		RetryBackoff:        20 * time.Millisecond,
		HedgeDelay:          20 * time.Millisecond,
		MaxBodyMemory:       256 << 20,
		GitPackCache:        1 << 30,
		ShutdownGrace:       5 * time.Second,
		ScrubInterval:       24 * time.Hour,
		ValueLogGCInterval:  10 * time.Minute,
		ScrubRate:           200,
		RequestTimeout:      5 * time.Minute,
		IdleTimeout:         60 * time.Second,
		HeaderTimeout:       10 * time.Second,
		MinBodyRate:         256 << 10,
		MaxInflight:         4096,
		MaxHeaderBytes:      8 << 10,
		MaxConns:            10000,
		RefTimeout:          2 * time.Second,
		HealthyMarkInterval: 10 * time.Second,
		RefRetryWindow:      3 * time.Second,
		RefCheckInterval:    time.Second,
		HintInterval:        time.Second,
		HintRate:            200,
		HintMaxAge:          3 * time.Hour,
		HintMaxPerPeer:      100000,
		AntiEntropyInterval: 10 * time.Minute,
		AntiEntropyRate:     200,
		TombstoneGrace:      7 * 24 * time.Hour,

		ReadyWaitsForPartitions: true,
	}
}

// Validate checks the configuration; an error names the field and the rule.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return errors.New("datanode: Config.ID must not be empty")
	case c.Control == nil:
		return errors.New("datanode: Config.Control must be set")
	case c.LeaseTTL < time.Second:
		return fmt.Errorf("datanode: Config.LeaseTTL must be >= 1s, got %s", c.LeaseTTL)
	case c.PeerTimeout <= 0:
		return errors.New("datanode: Config.PeerTimeout must be > 0")
	case c.PeerMinRate <= 0:
		return errors.New("datanode: Config.PeerMinRate must be > 0")
	case c.StaleRetries < 1 || c.BreakerThreshold < 1 || c.PeerRetries < 0:
		return errors.New("datanode: Config.StaleRetries and BreakerThreshold must be >= 1, PeerRetries >= 0")
	case c.BreakerCooldown <= 0 || c.RetryBackoff <= 0 || c.HedgeDelay <= 0:
		return errors.New("datanode: Config.BreakerCooldown, RetryBackoff and HedgeDelay must be > 0")
	case c.ValueLogGCInterval < 0:
		return errors.New("datanode: Config.ValueLogGCInterval must be >= 0")
	case c.ScrubInterval < 0 || c.ScrubRate < 1:
		return errors.New("datanode: Config.ScrubInterval must be >= 0 and ScrubRate >= 1")
	case c.GitPackCache < 0:
		return fmt.Errorf("datanode: Config.GitPackCache must be >= 0 (0: off), got %d", c.GitPackCache)
	case c.MaxBodyMemory < api.MaxBatchBytes:
		return fmt.Errorf("datanode: Config.MaxBodyMemory must be >= %d (one batch), got %d", api.MaxBatchBytes, c.MaxBodyMemory)
	case c.RequestTimeout <= 0:
		return errors.New("datanode: Config.RequestTimeout must be > 0")
	case c.HealthyMarkInterval <= 0:
		return errors.New("datanode: Config.HealthyMarkInterval must be > 0")
	case c.RefTimeout <= 0 || c.RefRetryWindow < 0 || c.RefCheckInterval <= 0:
		return errors.New("datanode: Config.RefTimeout and RefCheckInterval must be > 0, RefRetryWindow >= 0")
	case c.HintInterval <= 0 || c.HintRate < 1 || c.HintMaxAge <= 0 || c.HintMaxPerPeer < 1:
		return errors.New("datanode: Config.HintInterval and HintMaxAge must be > 0, HintRate and HintMaxPerPeer >= 1")
	case c.AntiEntropyInterval < 0 || c.AntiEntropyRate < 1:
		return errors.New("datanode: Config.AntiEntropyInterval must be >= 0 and AntiEntropyRate >= 1")
	case c.TombstoneGrace <= c.HintMaxAge || c.TombstoneGrace <= c.AntiEntropyInterval:
		return fmt.Errorf("datanode: Config.TombstoneGrace (%s) must exceed HintMaxAge (%s) and AntiEntropyInterval (%s)", c.TombstoneGrace, c.HintMaxAge, c.AntiEntropyInterval)
	case c.IdleTimeout <= 0 || c.ShutdownGrace <= 0:
		return errors.New("datanode: Config.IdleTimeout and ShutdownGrace must be > 0")
	case (c.TLS == nil) != (c.PeerTLS == nil):
		return errors.New("datanode: Config.TLS and Config.PeerTLS must be set together")
	case c.MaxConns < 1:
		return fmt.Errorf("datanode: Config.MaxConns must be >= 1, got %d", c.MaxConns)
	case c.MaxHeaderBytes < 4<<10:
		return fmt.Errorf("datanode: Config.MaxHeaderBytes must be >= 4096, got %d", c.MaxHeaderBytes)
	case c.HeaderTimeout <= 0 || c.MinBodyRate < 1 || c.MaxInflight < 1:
		return errors.New("datanode: Config.HeaderTimeout must be > 0, MinBodyRate and MaxInflight >= 1")
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return fmt.Errorf("datanode: Config.ListenAddr must be host:port, got %q", c.ListenAddr)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("datanode: Config.AdvertiseAddr must be host:port, got %q", c.AdvertiseAddr)
		}
	}
	if err := c.Ring.Validate(); err != nil {
		return fmt.Errorf("datanode: Config.Ring: %w", err)
	}
	return c.Store.Validate()
}
