package controlplane

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
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

// Rule 1.
func (pl *planner) promote(p api.Partition) (Action, bool) {
	if !pl.in.PromoteOK[p.Primary] {
		return Action{}, false
	}
	cands := filter(p.InSync, func(n string) bool {
		s, ok := pl.state(n)
		return n != p.Primary && pl.in.Live[n] && ok &&
			(s == api.StateActive || s == api.StateJoining || s == api.StateDraining)
	})
	if active := filter(cands, pl.liveActive); len(active) > 0 {
		cands = active
	}
	to := best(p.ID, cands, func(n string) int { return pl.primaries[n] })
	if to == "" {
		return Action{}, false
	}
	next := clonePartition(p)
	next.Primary, next.InSync = to, without(p.InSync, p.Primary)
	return pl.action(ActionPromote, p, to, next, "primary "+p.Primary+" lost its lease"), true
}

// Rule 2.
func (pl *planner) removeGone(p api.Partition) (Action, bool) {
	for _, n := range p.Replicas {
		if s, ok := pl.state(n); n != p.Primary && !ok {
			return pl.remove(p, n, "member was removed"), true
		} else if n != p.Primary && s == api.StateDown {
			return pl.remove(p, n, "member is DOWN"), true
		}
	}
	return Action{}, false
}

// Rule 3.
func (pl *planner) addMissing(p api.Partition) (Action, bool) {
	healthy := len(filter(p.Replicas, func(n string) bool {
		s, ok := pl.state(n)
		return ok && s != api.StateDown && s != api.StateDraining
	}))
	to := pl.leastLoadedOutsider(p)
	if healthy >= pl.in.Config.Replicas || to == "" {
		return Action{}, false
	}
	return pl.add(p, to, fmt.Sprintf("%d healthy replicas, want %d", healthy, pl.in.Config.Replicas)), true
}

// Rule 4.
func (pl *planner) moveFromDraining(p api.Partition) (Action, bool) {
	if s, _ := pl.state(p.Primary); s != api.StateDraining {
		return Action{}, false
	}
	to := best(p.ID, pl.primaryTargets(p), func(n string) int { return pl.primaries[n] })
	if to == "" {
		return Action{}, false
	}
	return pl.move(p, to, "primary is DRAINING"), true
}

// Rule 5.
func (pl *planner) removeDraining(p api.Partition) (Action, bool) {
	for _, n := range p.Replicas {
		if s, _ := pl.state(n); n == p.Primary || s != api.StateDraining {
			continue
		}
		if others := filter(without(p.InSync, n), pl.liveActive); len(others) >= pl.in.Config.Replicas {
			return pl.remove(p, n, "member is DRAINING"), true
		}
	}
	return Action{}, false
}

// Rule 6.
func (pl *planner) rebalance(p api.Partition) (Action, bool) {
	if len(p.Replicas) != pl.in.Config.Replicas {
		return Action{}, false
	}
	loaded := filter(without(p.Replicas, p.Primary), pl.liveActive)
	from := best(p.ID, loaded, func(n string) int { return -pl.replicas[n] })
	to := pl.leastLoadedOutsider(p)
	if from == "" || to == "" || pl.replicas[to] > pl.replicas[from]-2 {
		return Action{}, false
	}
	a := pl.add(p, to, fmt.Sprintf("rebalance: %s has %d replicas, %s has %d",
		to, pl.replicas[to], from, pl.replicas[from]))
	// Count the trim rule 7 will make now, so that this round does not add
	// to to on the strength of from's load more times than from can lose.
	pl.replicas[from]--
	return a, true
}

// Rule 7.
func (pl *planner) trim(p api.Partition) (Action, bool) {
	if len(p.Replicas) <= pl.in.Config.Replicas || len(filter(p.InSync, pl.liveActive)) <= pl.in.Config.Replicas {
		return Action{}, false
	}
	cands := without(p.InSync, p.Primary)
	n := best(p.ID, cands, func(n string) int { return -pl.replicas[n] })
	if n == "" {
		return Action{}, false
	}
	return pl.remove(p, n, fmt.Sprintf("trim: %d members, want %d", len(p.Replicas), pl.in.Config.Replicas)), true
}

// Rule 8.
func (pl *planner) balancePrimary(p api.Partition) (Action, bool) {
	to := best(p.ID, pl.primaryTargets(p), func(n string) int { return pl.primaries[n] })
	if to == "" || pl.primaries[p.Primary]-pl.primaries[to] < 2 {
		return Action{}, false
	}
	return pl.move(p, to, fmt.Sprintf("balance: %s has %d primaries, %s has %d",
		p.Primary, pl.primaries[p.Primary], to, pl.primaries[to])), true
}

// primaryTargets are the replicas a live primary may hand over to.
func (pl *planner) primaryTargets(p api.Partition) []string {
	return filter(without(p.InSync, p.Primary), pl.liveActive)
}

// liveActive reports whether n is Live and ACTIVE: fit to take a primary
// and to count toward the members a removal must leave behind.
func (pl *planner) liveActive(n string) bool {
	s, _ := pl.state(n)
	return pl.in.Live[n] && s == api.StateActive
}

// leastLoadedOutsider is the eligible node outside p with the fewest replicas.
func (pl *planner) leastLoadedOutsider(p api.Partition) string {
	out := filter(pl.eligible, func(n string) bool { return !p.Has(n) })
	return best(p.ID, out, func(n string) int { return pl.replicas[n] })
}

func (pl *planner) add(p api.Partition, n, reason string) Action {
	next := clonePartition(p)
	next.Replicas = append(next.Replicas, n)
	return pl.action(ActionAddReplica, p, n, next, reason)
}

func (pl *planner) remove(p api.Partition, n, reason string) Action {
	next := clonePartition(p)
	next.Replicas, next.InSync = without(p.Replicas, n), without(p.InSync, n)
	return pl.action(ActionRemoveReplica, p, n, next, reason)
}

func (pl *planner) move(p api.Partition, to, reason string) Action {
	next := clonePartition(p)
	next.Primary = to
	return pl.action(ActionMovePrimary, p, to, next, reason)
}

func (pl *planner) action(kind ActionKind, p api.Partition, n string, next api.Partition, reason string) Action {
	next.Epoch = 0
	next.PruneStores()
	a := Action{Kind: kind, Partition: p.ID, Epoch: p.Epoch, Node: n, Reason: reason, Next: next}
	if kind == ActionPromote || kind == ActionMovePrimary {
		a.From = p.Primary
	}
	return a
}

func (pl *planner) state(n string) (api.MemberState, bool) {
	m, ok := pl.in.Members[n]
	return m.State, ok
}

func filter(nodes []string, keep func(string) bool) []string {
	var out []string
	for _, n := range nodes {
		if keep(n) {
			out = append(out, n)
		}
	}
	return out
}

// ApplyActions returns a copy of parts with each action's Next installed,
// as the loop's transactions would leave them: each write gets a fresh
// epoch larger than every epoch before it, like an etcd revision. It does
// not check the actions' epochs; it is for tests, previews and
// `partitions plan`. parts is not changed.
func ApplyActions(parts map[int]api.Partition, actions []Action) map[int]api.Partition {
	out := make(map[int]api.Partition, len(parts))
	var rev int64
	for id, p := range parts {
		out[id] = clonePartition(p)
		rev = max(rev, p.Epoch)
	}
	for _, a := range actions {
		rev++
		next := clonePartition(a.Next)
		next.Epoch = rev
		out[a.Partition] = next
	}
	return out
}

// rendezvous is node n's placement score for partition p; higher is preferred.
func rendezvous(p int, n string) uint64 {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d/%s", p, n)))
	return binary.BigEndian.Uint64(sum[:8])
}

// sortBy sorts nodes by key, ascending, then in rendezvous order for p.
func sortBy(p int, nodes []string, key func(string) int) {
	slices.SortFunc(nodes, func(a, b string) int {
		if c := cmp.Compare(key(a), key(b)); c != 0 {
			return c
		}
		if c := cmp.Compare(rendezvous(p, b), rendezvous(p, a)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
}

// best is the node with the smallest key, ties in rendezvous order for p;
// "" when nodes is empty. nodes is not reordered.
func best(p int, nodes []string, key func(string) int) string {
	if len(nodes) == 0 {
		return ""
	}
	c := slices.Clone(nodes)
	sortBy(p, c, key)
	return c[0]
}

func without(list []string, n string) []string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		if x != n {
			out = append(out, x)
		}
	}
	return out
}

func clonePartition(p api.Partition) api.Partition {
	p.Replicas, p.InSync, p.Stores = slices.Clone(p.Replicas), slices.Clone(p.InSync), maps.Clone(p.Stores)
	return p
}
