package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/internal/retry"
)

// DetectorConfig configures the failure detector; see docs/membership.md.
type DetectorConfig struct {
	// Candidate names this process in the election (for logs and status). Required.
	Candidate string
	// SuspectTimeout: silence after which ACTIVE becomes SUSPECT; default 2s.
	SuspectTimeout time.Duration
	// DownTimeout: silence after which SUSPECT becomes DOWN; default 10s.
	DownTimeout time.Duration
	// Grace: after winning the election, how long the leader watches before
	// it marks anything; default DownTimeout.
	Grace time.Duration
	// Tick: how often the leader looks; default 250ms.
	Tick time.Duration
	// DampWindow and DampEvents: DampEvents suspect events within DampWindow
	// double a node's timeouts; defaults 10 minutes and 3.
	DampWindow time.Duration
	DampEvents int
	// SessionTTL is the election session's lease TTL in seconds; default 5.
	SessionTTL int
	// Planner configures the partition planner the leader also runs.
	Planner PlannerConfig
	// Logger; default discard.
	Logger *slog.Logger
}

// DefaultDetectorConfig returns the documented defaults.
func DefaultDetectorConfig(candidate string) DetectorConfig {
	return DetectorConfig{Candidate: candidate, SuspectTimeout: 2 * time.Second, DownTimeout: 10 * time.Second,
		Tick: 250 * time.Millisecond, DampWindow: 10 * time.Minute, DampEvents: 3, SessionTTL: 5,
		Logger: slog.New(slog.DiscardHandler)}
}

// Validate checks the configuration; an error names the field and the rule.
func (c DetectorConfig) Validate() error {
	switch {
	case c.Candidate == "":
		return errors.New("controlplane: DetectorConfig.Candidate must not be empty")
	case c.SuspectTimeout <= 0 || c.DownTimeout <= c.SuspectTimeout:
		return fmt.Errorf("controlplane: DetectorConfig needs 0 < SuspectTimeout < DownTimeout, got %s and %s", c.SuspectTimeout, c.DownTimeout)
	case c.Tick <= 0 || c.DampWindow <= 0 || c.DampEvents < 1 || c.SessionTTL < 1:
		return errors.New("controlplane: DetectorConfig.Tick, DampWindow, DampEvents and SessionTTL must be positive")
	}
	return nil
}

// RunDetector campaigns for the detector leadership and, while leader, runs
// the failure detector. It returns ctx.Err() when ctx is done; losing the
// leadership (session expired) only sends it back to campaigning.
func (c *Client) RunDetector(ctx context.Context, cfg DetectorConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Grace == 0 {
		cfg.Grace = cfg.DownTimeout
	}
	cfg.Planner = cfg.Planner.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for ctx.Err() == nil {
		err := c.campaignAndLead(ctx, cfg)
		if IsPermissionDenied(err) {
			// A data node's own etcd user may not campaign: the control
			// plane runs the detector (docs/security.md, etcd access).
			cfg.Logger.Info("detector: these etcd credentials may not campaign; leaving the detector to the control plane")
			<-ctx.Done()
			return ctx.Err()
		}
		if err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("detector: leadership attempt ended", "err", err)
			retry.Sleep(ctx, time.Second)
		}
	}
	return ctx.Err()
}

func (c *Client) campaignAndLead(ctx context.Context, cfg DetectorConfig) error {
	sess, err := concurrency.NewSession(c.etcd, concurrency.WithTTL(cfg.SessionTTL), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, c.key("detector"))
	if err := el.Campaign(ctx, cfg.Candidate); err != nil {
		return err
	}
	cfg.Logger.Info("detector: elected leader", "candidate", cfg.Candidate, "revision", el.Rev())
	if _, err := c.ClusterSecret(ctx); err != nil { // nodes that may not create it wait for it
		cfg.Logger.Warn("detector: could not ensure the cluster secret", "err", err)
	}
	d := &detector{c: c, cfg: cfg, fence: clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev()),
		start: time.Now(), lastSeen: map[string]time.Time{}, planState: &plannerState{}}
	err = d.lead(ctx, sess)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	el.Resign(rctx)
	return err
}

// DetectorLeader returns the candidate name of the current detector leader.
func (c *Client) DetectorLeader(ctx context.Context) (string, error) {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.etcd.Get(rctx, c.key("detector")+"/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return "", err
	}
	return string(resp.Kvs[0].Value), nil
}

// detector is one leadership term. lastSeen uses the monotonic clock.
type detector struct {
	c         *Client
	cfg       DetectorConfig
	fence     clientv3.Cmp
	start     time.Time
	lastSeen  map[string]time.Time
	planState *plannerState
}

func (d *detector) lead(ctx context.Context, sess *concurrency.Session) error {
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	plan := time.NewTicker(d.cfg.Planner.Interval)
	defer plan.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.Done():
			return errors.New("election session expired")
		case <-plan.C:
			if err := d.planRound(ctx); errors.Is(err, ErrNotLeader) {
				return err
			} else if err != nil {
				d.cfg.Logger.Warn("planner: round failed", "err", err)
			}
			continue
		case <-t.C:
		}
		if err := d.tick(ctx); errors.Is(err, ErrNotLeader) {
			return err
		} else if err != nil {
			d.cfg.Logger.Warn("detector: tick failed", "err", err)
		}
	}
}

func (d *detector) tick(ctx context.Context) error {
	members, err := d.c.Members(ctx)
	if err != nil {
		return err
	}
	live, err := d.c.Nodes(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	var errs []error
	for id, m := range members {
		rec, ok := live[id]
		alive := ok && rec.Generation == m.Generation
		switch {
		case alive:
			d.lastSeen[id] = now
		case d.lastSeen[id].IsZero() && now.Sub(d.start) < d.cfg.Grace:
			d.lastSeen[id] = d.start // silent since before this term, as far as we know
		case d.lastSeen[id].IsZero():
			d.lastSeen[id] = now // first seen after the grace: its silence starts now
		}
		if now.Sub(d.start) < d.cfg.Grace {
			continue
		}
		err := d.judge(ctx, m, alive, now.Sub(d.lastSeen[id]))
		if errors.Is(err, ErrNotLeader) {
			return err
		}
		if err != nil { // one member's failed verdict does not stop the others'
			errs = append(errs, fmt.Errorf("judge %s: %w", id, err))
		}
	}
	if err := d.admitJoins(ctx, members, live); errors.Is(err, ErrNotLeader) {
		return err
	} else if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// judge applies the state table to one member.
func (d *detector) judge(ctx context.Context, m api.Member, alive bool, silent time.Duration) error {
	mult := time.Duration(1)
	if d.damped(m) {
		mult = 2
	}
	switch {
	case (m.State == api.StateActive || m.State == api.StateJoining) && !alive && silent >= d.cfg.SuspectTimeout*mult:
		return d.transition(ctx, m, api.StateSuspect)
	case m.State == api.StateSuspect && alive:
		return d.transition(ctx, m, api.StateActive)
	case m.State == api.StateSuspect && silent >= d.cfg.DownTimeout*mult:
		return d.transition(ctx, m, api.StateDown)
	}
	return nil
}

// damped reports whether m had DampEvents suspect events within DampWindow.
func (d *detector) damped(m api.Member) bool {
	return len(d.recentEvents(m.SuspectEvents)) >= d.cfg.DampEvents
}

func (d *detector) recentEvents(events []int64) []int64 {
	cutoff := time.Now().Add(-d.cfg.DampWindow).UnixMilli()
	var out []int64
	for _, e := range events {
		if e >= cutoff {
			out = append(out, e)
		}
	}
	return out
}

// transition writes m's new state if m is unchanged since it was read and
// this detector still holds the leadership.
func (d *detector) transition(ctx context.Context, seen api.Member, to api.MemberState) error {
	var conds []clientv3.Cmp
	if to != api.StateActive { // the node must still be silent when the verdict is written
		conds = append(conds, clientv3.Compare(clientv3.CreateRevision(d.c.key("nodes", seen.ID)), "=", 0))
	}
	err := d.c.updateMember(ctx, seen.ID, func(m *api.Member, exists bool) error {
		if !exists || m.State != seen.State || m.Generation != seen.Generation {
			return errSkip
		}
		m.State = to
		if to == api.StateSuspect {
			m.SuspectEvents = append(d.recentEvents(m.SuspectEvents), time.Now().UnixMilli())
		}
		return nil
	}, conds, d.fence)
	if errors.Is(err, errSkip) {
		return nil
	}
	if err == nil {
		d.cfg.Logger.Info("detector: state change", "node", seen.ID, "from", seen.State, "to", to, "damped", d.damped(seen))
	}
	return err
}

var errSkip = errors.New("controlplane: skip")
