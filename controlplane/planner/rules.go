package planner

import (
	"fmt"

	"github.com/stratum-store/stratum/api"
)

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
	next.Primary, next.InSync = to, api.WithoutID(p.InSync, p.Primary)
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
		if others := filter(api.WithoutID(p.InSync, n), pl.liveActive); len(others) >= pl.in.Config.Replicas {
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
	loaded := filter(api.WithoutID(p.Replicas, p.Primary), pl.liveActive)
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
	cands := api.WithoutID(p.InSync, p.Primary)
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
	return filter(api.WithoutID(p.InSync, p.Primary), pl.liveActive)
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
	next.Replicas, next.InSync = api.WithoutID(p.Replicas, n), api.WithoutID(p.InSync, n)
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
