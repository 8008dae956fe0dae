package planner

import (
	"fmt"
	"maps"
	"slices"

	"github.com/stratum-store/stratum/api"
)

// ActionKind names what a planned action does.
type ActionKind string

// Action kinds. Each changes one partition record in one way.
const (
	// ActionCreate writes a partition's first record.
	ActionCreate ActionKind = "create"
	// ActionPromote replaces a lost primary with an in-sync replica.
	ActionPromote ActionKind = "promote"
	// ActionAddReplica adds Node to Replicas only: the primary adds it to
	// InSync after catching it up.
	ActionAddReplica ActionKind = "add_replica"
	// ActionRemoveReplica removes Node from Replicas and InSync.
	ActionRemoveReplica ActionKind = "remove_replica"
	// ActionMovePrimary hands the primary role from From to Node, a replica
	// that is already in sync.
	ActionMovePrimary ActionKind = "move_primary"
)

// DefaultMaxMoves caps the non-create actions of one round when
// PlanInput.MaxMoves is zero or negative.
const DefaultMaxMoves = 32

// Action is one planned change to one partition record. The loop applies it
// as an etcd transaction conditioned on Epoch (0: the record must not
// exist), so an action planned from a stale view fails harmlessly.
type Action struct {
	Kind      ActionKind `json:"kind"`
	Partition int        `json:"partition"`
	// Epoch is the epoch of the record the action was planned from; 0 for create.
	Epoch int64 `json:"epoch"`
	// Node is the node added or removed, or the new primary.
	Node string `json:"node,omitempty"`
	// From is the old primary of a promote or move_primary.
	From string `json:"from,omitempty"`
	// Reason says why, for logs and `partitions plan`.
	Reason string `json:"reason"`
	// Next is the whole record after the action, its Epoch left 0 (etcd
	// assigns the new one). Its slices are fresh: they never alias the input.
	Next api.Partition `json:"next"`
}

// PlanInput is everything Plan looks at. Plan reads it and changes nothing.
type PlanInput struct {
	Config api.PartitionConfig
	// Partitions are the current records; empty before creation.
	Partitions map[int]api.Partition
	// Members are the membership records; a node without one was removed.
	Members map[string]api.Member
	// Live marks nodes with a live lease (their node record exists).
	Live map[string]bool
	// PromoteOK marks non-live primaries that may be replaced because their
	// lease is surely gone. The loop decides; Plan only obeys.
	PromoteOK map[string]bool
	// AllowCreate lets Plan create the partitions when none exist.
	AllowCreate bool
	// MaxMoves caps the non-create actions of one round; if <= 0, DefaultMaxMoves.
	MaxMoves int
}

// Plan returns the actions that move the partition records one step toward
// where they should be: Config.Replicas replicas on distinct healthy nodes,
// a live in-sync primary, and replicas and primaries spread evenly over the
// nodes. Plan is pure: the same input gives the same actions, in partition
// order. The loop runs it again once the actions land and the primaries have
// caught new replicas up; a round with nothing to do returns nil.
//
// # Placement
//
// A node is eligible for new placement when its member state is ACTIVE and
// it is Live. Candidates are ordered by rendezvous hashing: node n's score
// for partition p is the first 8 bytes, big-endian, of
// SHA-256(fmt.Sprintf("%d/%s", p, n)), higher first, ties by node ID.
// Wherever a rule below picks the node with the fewest (or most) of
// something, ties go to the earlier node in this order.
//
// # Create
//
// Only when AllowCreate is set, there are no records at all and some node is
// eligible, Plan creates every partition 0..Count-1 and nothing else. Each
// takes the min(Replicas, #eligible) eligible nodes with the fewest replicas
// assigned so far in this plan; its primary is the chosen node with the
// fewest primaries so far; InSync = Replicas (empty replicas are trivially
// in sync). Creates are not capped by MaxMoves.
//
// # Repair and balance
//
// Otherwise every partition, in ID order, gets at most one action: the first
// of these rules that applies. The per-node counts of replicas and primaries
// the rules compare are updated as actions are planned, so one round
// converges instead of piling onto the same node. The round stops once
// MaxMoves actions are planned.
//
//  1. Promote, when the primary is not Live and PromoteOK[primary]: the new
//     primary is an InSync member that is Live and ACTIVE, JOINING or
//     DRAINING (ACTIVE first, then fewest primaries). The old primary leaves
//     InSync but stays in Replicas: rule 2 removes it once DOWN, and if it
//     comes back its new primary catches it up. While the primary
//     is not Live no other rule runs: without a candidate (or without
//     PromoteOK) the partition is unavailable and its record is left alone.
//  2. Remove a non-primary replica whose member record is gone or DOWN.
//  3. Add a replica when fewer than Config.Replicas members are healthy
//     (member record present, neither DOWN nor DRAINING): the eligible
//     non-member with the fewest replicas.
//  4. Move the primary off a DRAINING primary to an InSync, Live, ACTIVE
//     replica (fewest primaries). A JOINING primary stays.
//  5. Remove a DRAINING non-primary replica once Config.Replicas other InSync
//     members are ACTIVE and Live.
//  6. Rebalance replicas: when the partition has exactly Config.Replicas
//     members and the least loaded eligible non-member has at least 2 fewer
//     replicas than the most loaded non-primary, ACTIVE, Live member, add it.
//     The partition has one member too many until rule 7 trims it; the round
//     counts that trim against the loaded member at once.
//  7. Trim: when there are more than Config.Replicas members and more than
//     Config.Replicas InSync members are ACTIVE and Live, remove the most
//     loaded non-primary InSync member.
//  8. Balance primaries: when an InSync, Live, ACTIVE replica has at least 2
//     fewer primaries than the primary, move the primary to the one with
//     the fewest.
//
// # Invariants
//
// Every Next keeps Replicas and InSync free of duplicates, InSync within
// Replicas, and the primary in both. Plan never adds to InSync except at
// create: only a primary that has caught a replica up may vouch for it.
//
// # Caveats
//
// Create is all or nothing: if some records exist, missing partitions are
// not filled in. The balancing thresholds of 2 (rules 6 and 8) are what keep
// balancing from flapping: after a move the receiver has at most as many as
// the giver had left, where a threshold of 1 would only swap which node is
// heavier. The price is that counts settle within about 2 of each other, not
// exactly, and only pairs of nodes that share a partition are compared.
func Plan(in PlanInput) []Action {
	pl := newPlanner(in)
	if len(in.Partitions) == 0 {
		if !in.AllowCreate || len(pl.eligible) == 0 {
			return nil
		}
		return pl.createAll()
	}
	return pl.repairAll()
}

// planner holds one round's running per-node counts.
type planner struct {
	in        PlanInput
	eligible  []string       // ACTIVE and Live, sorted by ID
	replicas  map[string]int // replicas per node, as planned so far
	primaries map[string]int // primaries per node, as planned so far
}

func newPlanner(in PlanInput) *planner {
	pl := &planner{in: in, replicas: map[string]int{}, primaries: map[string]int{}}
	for id, m := range in.Members {
		if m.State == api.StateActive && in.Live[id] {
			pl.eligible = append(pl.eligible, id)
		}
	}
	slices.Sort(pl.eligible)
	for _, p := range in.Partitions {
		pl.primaries[p.Primary]++
		for _, r := range p.Replicas {
			pl.replicas[r]++
		}
	}
	return pl
}

func (pl *planner) createAll() []Action {
	var out []Action
	for id := range pl.in.Config.Count {
		a := pl.create(id)
		pl.record(a)
		out = append(out, a)
	}
	return out
}

func (pl *planner) create(id int) Action {
	nodes := slices.Clone(pl.eligible)
	sortBy(id, nodes, func(n string) int { return pl.replicas[n] })
	nodes = nodes[:min(pl.in.Config.Replicas, len(nodes))]
	primary := best(id, nodes, func(n string) int { return pl.primaries[n] })
	next := api.Partition{ID: id, Primary: primary, Replicas: nodes, InSync: slices.Clone(nodes)}
	return Action{Kind: ActionCreate, Partition: id, Node: primary, Next: next,
		Reason: fmt.Sprintf("new cluster: %d replicas on %d eligible nodes", len(nodes), len(pl.eligible))}
}

func (pl *planner) repairAll() []Action {
	maxMoves := pl.in.MaxMoves
	if maxMoves <= 0 {
		maxMoves = DefaultMaxMoves
	}
	var out []Action
	for _, id := range slices.Sorted(maps.Keys(pl.in.Partitions)) {
		if len(out) >= maxMoves {
			break
		}
		if a, ok := pl.repair(pl.in.Partitions[id]); ok {
			pl.record(a)
			out = append(out, a)
		}
	}
	return out
}

// repair returns the first action the rules of Plan give for p.
func (pl *planner) repair(p api.Partition) (Action, bool) {
	if p.Primary == "" {
		return Action{}, false
	}
	if !pl.in.Live[p.Primary] {
		return pl.promote(p)
	}
	rules := []func(api.Partition) (Action, bool){
		pl.removeGone, pl.addMissing, pl.moveFromDraining, pl.removeDraining,
		pl.rebalance, pl.trim, pl.balancePrimary,
	}
	for _, rule := range rules {
		if a, ok := rule(p); ok {
			return a, true
		}
	}
	return Action{}, false
}

// record updates the running counts with a planned action.
func (pl *planner) record(a Action) {
	switch a.Kind {
	case ActionCreate:
		pl.primaries[a.Node]++
		for _, r := range a.Next.Replicas {
			pl.replicas[r]++
		}
	case ActionAddReplica:
		pl.replicas[a.Node]++
	case ActionRemoveReplica:
		pl.replicas[a.Node]--
	case ActionPromote, ActionMovePrimary:
		pl.primaries[a.From]--
		pl.primaries[a.Node]++
	}
}
