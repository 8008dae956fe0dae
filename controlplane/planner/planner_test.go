package planner

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/api"
)

// ruleInput is one partition, 0, on a, b and c (primary a, all in sync) in
// a cluster of ACTIVE live nodes a, b, c and d. Plan has nothing to do for it.
func ruleInput() PlanInput {
	in := PlanInput{
		Config:     api.PartitionConfig{Count: 1, Replicas: 3},
		Partitions: map[int]api.Partition{0: {ID: 0, Epoch: 7, Primary: "a", Replicas: []string{"a", "b", "c"}, InSync: []string{"a", "b", "c"}}},
		Members:    map[string]api.Member{},
		Live:       map[string]bool{},
		PromoteOK:  map[string]bool{},
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		in.Members[n] = api.Member{ID: n, State: api.StateActive}
		in.Live[n] = true
	}
	return in
}

// Edits of ruleInput.
func set(n string, s api.MemberState) func(*PlanInput) {
	return func(in *PlanInput) { in.Members[n] = api.Member{ID: n, State: s} }
}
func gone(n string) func(*PlanInput) { return func(in *PlanInput) { delete(in.Members, n) } }
func dead(n string) func(*PlanInput) { return func(in *PlanInput) { in.Live[n] = false } }
func promoteOK(n string) func(*PlanInput) {
	return func(in *PlanInput) { in.PromoteOK[n] = true }
}
func members(replicas, inSync string) func(*PlanInput) {
	return func(in *PlanInput) {
		p := in.Partitions[0]
		p.Replicas, p.InSync = strings.Fields(replicas), strings.Fields(inSync)
		in.Partitions[0] = p
	}
}

// load gives node k more replicas (and primaries too if primary) through
// partitions 100.. whose own actions the rule table ignores.
func load(n string, k int, primary bool) func(*PlanInput) {
	return func(in *PlanInput) {
		for range k {
			id, p := 100+len(in.Partitions), api.Partition{Primary: "zz", Replicas: []string{"zz", n}}
			if primary {
				p.Primary, p.Replicas = n, []string{n}
			}
			p.ID, p.InSync = id, p.Replicas
			in.Partitions[id] = p
		}
	}
}

// describe formats partition 0's action as "kind node [from]", "" if none.
func describe(actions []Action) string {
	for _, a := range actions {
		if a.Partition == 0 {
			return strings.TrimSpace(fmt.Sprintf("%s %s %s", a.Kind, a.Node, a.From))
		}
	}
	return ""
}

func TestPlanRules(t *testing.T) {
	f := func(name, want string, edits ...func(*PlanInput)) {
		t.Helper()
		in := ruleInput()
		for _, e := range edits {
			e(&in)
		}
		actions := Plan(in)
		checkActions(t, in.Partitions, actions)
		if got := describe(actions); got != want {
			t.Errorf("%s: got %q; want %q", name, got, want)
		}
	}
	f("settled", "")
	// 1. Promote.
	f("dead primary, lease maybe held", "", dead("a"))
	f("dead primary", "promote c a", dead("a"), promoteOK("a"), set("b", api.StateJoining))
	f("promote prefers ACTIVE", "promote b a", dead("a"), promoteOK("a"), set("c", api.StateDraining))
	f("promote takes JOINING", "promote b a", dead("a"), promoteOK("a"), set("c", api.StateSuspect), set("b", api.StateJoining))
	f("promote skips dead", "promote c a", dead("a"), promoteOK("a"), dead("b"))
	f("promote only from InSync", "promote b a", dead("a"), promoteOK("a"), members("a b c", "a b"), set("b", api.StateJoining))
	f("no in-sync candidate", "", dead("a"), promoteOK("a"), members("a b c", "a"), set("c", api.StateDown))
	f("no SUSPECT candidate", "", dead("a"), promoteOK("a"), set("b", api.StateSuspect), set("c", api.StateSuspect))
	f("dead primary blocks the rest", "", dead("a"), set("c", api.StateDown))
	// 2. Remove gone replicas.
	f("DOWN replica", "remove_replica c", set("c", api.StateDown))
	f("removed replica", "remove_replica b", gone("b"))
	f("DOWN live primary gets a spare", "add_replica d", set("a", api.StateDown))
	// 3. Add.
	f("DRAINING replica", "add_replica d", set("c", api.StateDraining))
	f("DRAINING primary", "add_replica d", set("a", api.StateDraining))
	f("no eligible node", "", set("c", api.StateDraining), set("d", api.StateJoining))
	f("SUSPECT is healthy", "", set("c", api.StateSuspect))
	// 4. Move off a DRAINING primary.
	f("move off DRAINING", "move_primary c a", members("a b c d", "a b c d"), set("a", api.StateDraining), set("b", api.StateJoining), set("d", api.StateJoining))
	f("JOINING primary stays", "", set("a", api.StateJoining))
	// 5. Remove a DRAINING replica.
	f("drained replica", "remove_replica c", members("a b c d", "a b c d"), set("c", api.StateDraining))
	f("replacement not caught up", "", members("a b c d", "a b c"), set("c", api.StateDraining))
	// 6 and 7. Rebalance and trim.
	f("rebalance", "add_replica d", load("b", 2, false))
	f("rebalance under threshold", "", load("b", 2, false), load("d", 2, false))
	f("primary's load is not rebalanced", "", load("a", 2, false))
	f("trim most loaded", "remove_replica c", members("a b c d", "a b c d"), load("c", 3, false))
	f("trim waits for catch-up", "", members("a b c d", "a b c"))
	// 8. Primary balance.
	f("balance primaries", "move_primary c a", load("a", 2, true), load("b", 1, true), load("d", 1, false))
	f("primaries under threshold", "", load("a", 1, true), load("b", 1, true), load("c", 1, true), load("d", 1, false))
	f("balance only to InSync", "move_primary b a", members("a b c", "a b"), load("a", 2, true))
}

func TestPlanCreate(t *testing.T) {
	f := func(nodes string, allow bool, wantActions, wantReplicas int) {
		t.Helper()
		in := PlanInput{Config: api.PartitionConfig{Count: 8, Replicas: 3}, AllowCreate: allow,
			Members: map[string]api.Member{"j": {ID: "j", State: api.StateJoining}}, Live: map[string]bool{"j": true}}
		for _, n := range strings.Fields(nodes) {
			in.Members[n], in.Live[n] = api.Member{ID: n, State: api.StateActive}, true
		}
		actions := Plan(in)
		checkActions(t, in.Partitions, actions)
		if len(actions) != wantActions {
			t.Fatalf("nodes %q allow %v: got %d actions; want %d", nodes, allow, len(actions), wantActions)
		}
		for _, a := range actions {
			if got := len(a.Next.Replicas); got != wantReplicas || a.Next.Has("j") {
				t.Fatalf("nodes %q: partition %d got replicas %v; want %d ACTIVE ones", nodes, a.Partition, a.Next.Replicas, wantReplicas)
			}
		}
	}
	f("a b c d", true, 8, 3)
	f("a b", true, 8, 2)
	f("a b c", false, 0, 0)
	f("", true, 0, 0)
}

func TestPlanMaxMoves(t *testing.T) {
	s := newSim(t, 256, 3, "a", "b", "c")
	s.converge()
	s.node("d", api.StateActive, true)
	// Uncapped, one round adds d to exactly 768/4 partitions: the running
	// counts stop it where it is balanced, not at 255.
	for _, tc := range []struct{ max, want int }{{5, 5}, {0, DefaultMaxMoves}, {-1, DefaultMaxMoves}, {1000, 192}} {
		in := s.in
		in.MaxMoves = tc.max
		if got := len(Plan(in)); got != tc.want {
			t.Errorf("MaxMoves %d: got %d actions; want %d", tc.max, got, tc.want)
		}
	}
}

func TestPlanDeterministic(t *testing.T) {
	s := newSim(t, 256, 3, "a", "b", "c", "d")
	s.converge()
	s.node("e", api.StateActive, true)
	s.node("b", api.StateDraining, true)
	first := Plan(s.in)
	if len(first) == 0 {
		t.Fatal("got no actions; want a drain and a rebalance to plan")
	}
	for i := range 20 {
		if got := Plan(s.in); !reflect.DeepEqual(got, first) {
			t.Fatalf("run %d: got %v; want %v", i, got, first)
		}
	}
}

func TestPlanLeavesInputAlone(t *testing.T) {
	s := newSim(t, 64, 3, "a", "b", "c", "d")
	s.converge()
	s.node("d", api.StateDraining, true)
	before := ApplyActions(s.in.Partitions, nil)
	if actions := Plan(s.in); len(actions) == 0 {
		t.Fatal("got no actions; want the drain to start")
	}
	if !reflect.DeepEqual(s.in.Partitions, before) {
		t.Fatal("Plan changed its input")
	}
}

func TestApplyActions(t *testing.T) {
	s := newSim(t, 16, 3, "a", "b", "c")
	s.converge()
	s.node("d", api.StateActive, true)
	before := ApplyActions(s.in.Partitions, nil)
	actions := Plan(s.in)
	after := ApplyActions(s.in.Partitions, actions)
	if !reflect.DeepEqual(s.in.Partitions, before) {
		t.Fatal("ApplyActions changed its input")
	}
	for i, a := range actions {
		if got, want := after[a.Partition].Epoch, int64(len(before)+i+1); got != want || !after[a.Partition].Has(a.Node) {
			t.Fatalf("%+v: got %+v; want Next at epoch %d", a, after[a.Partition], want)
		}
	}
}

func TestPlanCreateBalances(t *testing.T) {
	for _, tc := range []struct {
		nodes                     []string
		replicaSpread, primSpread int
	}{
		{[]string{"a", "b", "c"}, 0, 1},
		{[]string{"a", "b", "c", "d", "e"}, 1, 1},
	} {
		s := newSim(t, 256, 3, tc.nodes...)
		s.converge()
		if s.rounds != 1 {
			t.Errorf("%v: got %d rounds; want 1 (create only)", tc.nodes, s.rounds)
		}
		s.checkComplete(tc.nodes, tc.replicaSpread, tc.primSpread)
	}
}

func TestPlanAddNodes(t *testing.T) {
	s := newSim(t, 256, 3, "a", "b", "c")
	s.converge()
	// Each step moves close to the fewest replicas it can: d needs 768/4 =
	// 192, e about 154 (it takes 168). Every add is paired with a trim.
	s.node("d", api.StateActive, true)
	s.converge()
	s.checkComplete([]string{"a", "b", "c", "d"}, 1, 1)
	s.checkMoves(192)
	s.node("e", api.StateActive, true)
	s.converge()
	s.checkComplete([]string{"a", "b", "c", "d", "e"}, 1, 1)
	s.checkMoves(170)
}

func TestPlanDrain(t *testing.T) {
	s := newSim(t, 256, 3, "a", "b", "c", "d")
	s.converge()
	s.node("d", api.StateDraining, true)
	s.converge()
	s.checkComplete([]string{"a", "b", "c"}, 0, 1)
	s.checkMoves(192) // d held 192 replicas
}

func TestPlanLoseNode(t *testing.T) {
	s := newSim(t, 256, 3, "a", "b", "c", "d")
	s.converge()
	var led []int
	for id, p := range s.in.Partitions {
		if p.Primary == "d" {
			led = append(led, id)
		}
	}
	s.node("d", api.StateDown, false)
	s.in.PromoteOK["d"] = true
	s.converge()
	s.checkComplete([]string{"a", "b", "c"}, 0, 1)
	s.checkMoves(192)
	if got := s.kinds[ActionPromote]; got != len(led) {
		t.Fatalf("got %d promotions; want %d, one per partition d led", got, len(led))
	}
}

// sim runs the planner the way the loop does: plan, apply, then let every
// live primary catch its live replicas up, until a round plans nothing.
type sim struct {
	t      *testing.T
	in     PlanInput
	rounds int
	kinds  map[ActionKind]int
}

func newSim(t *testing.T, count, replicas int, nodes ...string) *sim {
	s := &sim{t: t, kinds: map[ActionKind]int{}, in: PlanInput{
		Config:      api.PartitionConfig{Count: count, Replicas: replicas},
		Partitions:  map[int]api.Partition{},
		Members:     map[string]api.Member{},
		Live:        map[string]bool{},
		PromoteOK:   map[string]bool{},
		AllowCreate: true,
	}}
	for _, n := range nodes {
		s.node(n, api.StateActive, true)
	}
	return s
}

func (s *sim) node(id string, st api.MemberState, live bool) {
	s.in.Members[id] = api.Member{ID: id, State: st}
	s.in.Live[id] = live
}

func (s *sim) converge() {
	s.t.Helper()
	s.kinds = map[ActionKind]int{}
	for s.rounds = 0; s.rounds < 200; s.rounds++ {
		actions := Plan(s.in)
		if len(actions) == 0 {
			return
		}
		checkActions(s.t, s.in.Partitions, actions)
		for _, a := range actions {
			s.kinds[a.Kind]++
		}
		s.in.Partitions = ApplyActions(s.in.Partitions, actions)
		s.catchUp()
		checkInvariants(s.t, s.in)
	}
	s.t.Fatalf("not converged after %d rounds", s.rounds)
}

func (s *sim) catchUp() {
	for id, p := range s.in.Partitions {
		if !s.in.Live[p.Primary] {
			continue
		}
		var in []string
		for _, r := range p.Replicas {
			if p.IsInSync(r) || s.in.Live[r] {
				in = append(in, r)
			}
		}
		p.InSync = in
		s.in.Partitions[id] = p
	}
}

// checkComplete checks that every partition has Config.Replicas in-sync
// replicas, all on nodes, and the spreads (max - min) of replicas and of
// primaries per node.
func (s *sim) checkComplete(nodes []string, replicaSpread, primSpread int) {
	s.t.Helper()
	reps, prims := map[string]int{}, map[string]int{}
	for id, p := range s.in.Partitions {
		if len(p.Replicas) != s.in.Config.Replicas || len(p.InSync) != len(p.Replicas) {
			s.t.Fatalf("partition %d: got replicas %v in sync %v; want %d, all in sync", id, p.Replicas, p.InSync, s.in.Config.Replicas)
		}
		prims[p.Primary]++
		for _, r := range p.Replicas {
			if !slices.Contains(nodes, r) {
				s.t.Fatalf("partition %d: got replica on %s; want only %v", id, r, nodes)
			}
			reps[r]++
		}
	}
	rs, ps := spread(reps, nodes), spread(prims, nodes)
	s.t.Logf("%d nodes, %d rounds, actions %v: replicas %v, primaries %v", len(nodes), s.rounds, s.kinds, reps, prims)
	if rs > replicaSpread || ps > primSpread {
		s.t.Fatalf("got spreads replicas %d primaries %d; want <= %d and <= %d", rs, ps, replicaSpread, primSpread)
	}
}

// checkMoves checks that at most max replicas were added, each added
// replica trimmed or replacing a removed one.
func (s *sim) checkMoves(max int) {
	s.t.Helper()
	if add, rm := s.kinds[ActionAddReplica], s.kinds[ActionRemoveReplica]; add > max || add != rm {
		s.t.Fatalf("got %d adds and %d removals; want at most %d, as many of each", add, rm, max)
	}
}

func spread(counts map[string]int, nodes []string) int {
	lo, hi := counts[nodes[0]], counts[nodes[0]]
	for _, n := range nodes {
		lo, hi = min(lo, counts[n]), max(hi, counts[n])
	}
	return hi - lo
}

func checkInvariants(t *testing.T, in PlanInput) {
	t.Helper()
	if len(in.Partitions) != in.Config.Count {
		t.Fatalf("got %d partitions; want %d", len(in.Partitions), in.Config.Count)
	}
	for id, p := range in.Partitions {
		dup := len(p.Replicas) != len(uniq(p.Replicas)) || len(p.InSync) != len(uniq(p.InSync))
		sub := !slices.ContainsFunc(p.InSync, func(n string) bool { return !p.Has(n) })
		if p.ID != id || p.Primary == "" || !p.Has(p.Primary) || !p.IsInSync(p.Primary) || dup || !sub {
			t.Fatalf("partition %d: got %+v; want a primary in Replicas and InSync, InSync within Replicas, no duplicates", id, p)
		}
	}
}

func uniq(s []string) []string { return slices.Compact(slices.Sorted(slices.Values(s))) }

// checkActions checks that each action changes its record in exactly the
// way its Kind says, and really changes it.
func checkActions(t *testing.T, cur map[int]api.Partition, actions []Action) {
	t.Helper()
	seen := map[int]bool{}
	for _, a := range actions {
		p, exists := cur[a.Partition]
		if seen[a.Partition] || exists == (a.Kind == ActionCreate) || a.Epoch != p.Epoch || a.Next.Epoch != 0 || a.Next.ID != a.Partition {
			t.Fatalf("got %+v on %+v; want one action per partition, create iff no record, the record's epoch", a, p)
		}
		seen[a.Partition] = true
		if want := expectNext(t, p, a); !reflect.DeepEqual(a.Next, want) || reflect.DeepEqual(a.Next, p) {
			t.Fatalf("%s %s on %+v: got next %+v; want %+v", a.Kind, a.Node, p, a.Next, want)
		}
	}
}

// expectNext is the record a's Kind says should follow p.
func expectNext(t *testing.T, p api.Partition, a Action) api.Partition {
	t.Helper()
	want := api.Partition{ID: p.ID, Primary: p.Primary, Replicas: slices.Clone(p.Replicas), InSync: slices.Clone(p.InSync)}
	drop := func(s []string, n string) []string {
		return slices.DeleteFunc(slices.Clone(s), func(x string) bool { return x == n })
	}
	switch a.Kind {
	case ActionCreate:
		return api.Partition{ID: a.Partition, Primary: a.Node, Replicas: a.Next.Replicas, InSync: a.Next.Replicas}
	case ActionAddReplica:
		if p.Has(a.Node) {
			t.Fatalf("add_replica %s to %+v: already a member", a.Node, p)
		}
		want.Replicas = append(want.Replicas, a.Node)
	case ActionRemoveReplica:
		if !p.Has(a.Node) || a.Node == p.Primary {
			t.Fatalf("remove_replica %s from %+v: want a non-primary member", a.Node, p)
		}
		want.Replicas, want.InSync = drop(p.Replicas, a.Node), drop(p.InSync, a.Node)
	case ActionPromote, ActionMovePrimary:
		if a.From != p.Primary || a.Node == p.Primary || !p.IsInSync(a.Node) {
			t.Fatalf("%s %s from %s on %+v: want an in-sync replica replacing the primary", a.Kind, a.Node, a.From, p)
		}
		want.Primary = a.Node
		if a.Kind == ActionPromote {
			want.InSync = drop(p.InSync, p.Primary)
		}
	default:
		t.Fatalf("unknown kind %q", a.Kind)
	}
	return want
}
