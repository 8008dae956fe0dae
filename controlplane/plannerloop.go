package controlplane

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/controlplane/planner"
)

// PlannerConfig configures the partition planner, which runs on the
// failure detector's leader and writes its actions fenced by the same
// election key (docs/refs.md).
type PlannerConfig struct {
	// Disabled turns the planner off (tests of membership alone).
	Disabled bool
	// Partitions is the configuration written when the cluster has none;
	// default 256 partitions of 3 replicas. An existing one always wins.
	Partitions api.PartitionConfig
	// Interval between rounds; default 1s.
	Interval time.Duration
	// MaxMoves caps the non-create actions of one round; default 32.
	MaxMoves int
	// CreateDelay: partitions are created as soon as Partitions.Replicas
	// nodes are ACTIVE, or after the first ACTIVE node has waited this long;
	// default 10s.
	CreateDelay time.Duration
	// PromoteWait: a primary whose member record was removed (not merely
	// expired) is replaced only after its node record has been absent this
	// long, so a lease that was still running cannot serve a stale read;
	// default 10s (keep it above every node's lease TTL).
	PromoteWait time.Duration
}

func (c PlannerConfig) withDefaults() PlannerConfig {
	if c.Partitions.Count < 1 {
		c.Partitions.Count = api.DefaultPartitionCount
	}
	if c.Partitions.Replicas < 1 {
		c.Partitions.Replicas = api.DefaultPartitionReplicas
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.MaxMoves <= 0 {
		c.MaxMoves = planner.DefaultMaxMoves
	}
	if c.CreateDelay <= 0 {
		c.CreateDelay = 10 * time.Second
	}
	if c.PromoteWait <= 0 {
		c.PromoteWait = 10 * time.Second
	}
	return c
}

// plannerState is what the planner remembers within one leadership term.
type plannerState struct {
	config        *api.PartitionConfig
	firstEligible time.Time // monotonic
}

// planRound reads the cluster, plans and applies one round of actions.
func (d *detector) planRound(ctx context.Context) error {
	pc := d.cfg.Planner
	if pc.Disabled {
		return nil
	}
	if d.planState.config == nil {
		cfg, err := d.c.EnsurePartitionConfig(ctx, pc.Partitions)
		if err != nil {
			return err
		}
		d.planState.config = &cfg
	}
	in, records, err := d.c.planInput(ctx, *d.planState.config)
	if err != nil {
		return err
	}
	in.MaxMoves = pc.MaxMoves
	now := time.Now()
	for id, live := range in.Live {
		if !live {
			continue
		}
		if m, ok := in.Members[id]; ok && m.State == api.StateActive && d.planState.firstEligible.IsZero() {
			d.planState.firstEligible = now
		}
	}
	for id := range in.PromoteOK {
		if _, member := in.Members[id]; !member {
			in.PromoteOK[id] = now.Sub(d.lastSeenOrStart(id)) >= pc.PromoteWait
		}
	}
	// records counts the partition records in etcd, readable or not: an
	// unreadable one (skipped and reported) is neither missing nor created
	// again, and the others are still planned.
	var actions []planner.Action
	if records > 0 && records < in.Config.Count {
		actions = missingCreates(in)
	} else {
		in.AllowCreate = records == 0 && !d.planState.firstEligible.IsZero() &&
			(eligibleCount(in) >= in.Config.Replicas || now.Sub(d.planState.firstEligible) >= pc.CreateDelay)
		actions = planner.Plan(in)
	}
	return d.apply(ctx, actions)
}

// missingCreates finishes a creation that a previous leader left half
// done (it crashed between the per-partition transactions): it plans a
// fresh creation and keeps the records that do not exist yet.
func missingCreates(in planner.PlanInput) []planner.Action {
	fresh := in
	fresh.Partitions, fresh.AllowCreate = map[int]api.Partition{}, true
	var out []planner.Action
	for _, a := range planner.Plan(fresh) {
		if _, exists := in.Partitions[a.Partition]; !exists && a.Kind == planner.ActionCreate {
			out = append(out, a)
		}
	}
	return out
}

func (d *detector) lastSeenOrStart(id string) time.Time {
	if t := d.lastSeen[id]; !t.IsZero() {
		return t
	}
	return d.start
}

func eligibleCount(in planner.PlanInput) int {
	n := 0
	for id, m := range in.Members {
		if m.State == api.StateActive && in.Live[id] {
			n++
		}
	}
	return n
}

// planInput reads what Plan needs, and how many partition records exist
// (readable or not). PromoteOK is true for every node without a live
// lease; planRound narrows it for removed members.
func (c *Client) planInput(ctx context.Context, cfg api.PartitionConfig) (planner.PlanInput, int, error) {
	members, err := c.Members(ctx)
	if err != nil {
		return planner.PlanInput{}, 0, err
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return planner.PlanInput{}, 0, err
	}
	parts, records, err := c.partitions(ctx)
	if err != nil {
		return planner.PlanInput{}, 0, err
	}
	in := planner.PlanInput{Config: cfg, Partitions: parts, Members: members, Live: map[string]bool{}, PromoteOK: map[string]bool{}}
	for id, rec := range nodes {
		m, ok := members[id]
		in.Live[id] = ok && m.Generation == rec.Generation
	}
	for _, p := range parts {
		for _, id := range p.Replicas {
			if !in.Live[id] {
				in.PromoteOK[id] = true
			}
		}
	}
	return in, records, nil
}

// apply writes each action as its own transaction, conditioned on the epoch
// it was planned from and on this leader's election key. A promotion is also
// conditioned on the old primary still having no node record. A stale
// action fails harmlessly and is planned again next round if still needed.
func (d *detector) apply(ctx context.Context, actions []planner.Action) error {
	for _, a := range actions {
		conds := []clientv3.Cmp{d.fence}
		if a.Kind == planner.ActionPromote {
			conds = append(conds, clientv3.Compare(clientv3.CreateRevision(d.c.key("nodes", a.From)), "=", 0))
		}
		epoch, err := d.c.UpdatePartition(ctx, a.Epoch, a.Next, conds...)
		switch {
		case errors.Is(err, api.ErrStaleEpoch):
			if !d.stillLeader(ctx) {
				return ErrNotLeader
			}
			d.cfg.Logger.Debug("planner: action raced a change", "action", a.Kind, "partition", a.Partition)
		case err != nil:
			return err
		case a.Kind != planner.ActionCreate:
			d.cfg.Logger.Debug("planner: applied", "action", a.Kind, "partition", a.Partition, "node", a.Node,
				"from", a.From, "reason", a.Reason, "epoch", epoch)
		}
	}
	if len(actions) > 0 && actions[0].Kind == planner.ActionCreate {
		d.cfg.Logger.Info("planner: created partitions", "count", len(actions))
	}
	return nil
}

// stillLeader checks the election key this leader's writes are fenced by.
func (d *detector) stillLeader(ctx context.Context) bool {
	rctx, cancel := d.c.withTimeout(ctx)
	defer cancel()
	resp, err := d.c.etcd.Txn(rctx).If(d.fence).Commit()
	return err == nil && resp.Succeeded
}

// PlanPartitions computes, without applying it, the round the planner would
// run now (for `stratum partitions plan`). A primary without a lease counts
// as replaceable.
func (c *Client) PlanPartitions(ctx context.Context) ([]planner.Action, error) {
	cfg, ok, err := c.PartitionConfig(ctx)
	if err != nil || !ok {
		return nil, err
	}
	in, _, err := c.planInput(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return planner.Plan(in), nil
}
