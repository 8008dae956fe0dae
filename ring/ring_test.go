package ring

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestNewErrors(t *testing.T) {
	f := func(nodes []Node, cfg Config, wantIs error, wantMsg string) {
		t.Helper()
		r, err := New(1, nodes, cfg)
		if r != nil || !errors.Is(err, wantIs) || !strings.Contains(errString(err), wantMsg) {
			t.Fatalf("New(%v, %+v): got ring %v, err %v; want nil ring and %v containing %q",
				nodes, cfg, r != nil, err, wantIs, wantMsg)
		}
	}
	a := Node{ID: "a", Addr: "10.0.0.1:7000"}
	b := Node{ID: "b", Addr: "10.0.0.2:7000"}
	f([]Node{a, b, a}, Config{}, ErrDuplicateNode, `"a" at nodes[0] and nodes[2]`)
	f([]Node{a, {Addr: "10.0.0.3:7000"}}, Config{}, ErrInvalidNode, "nodes[1].ID is empty")
	f([]Node{a, {ID: "c"}}, Config{}, ErrInvalidNode, `nodes[1].Addr is empty (ID "c")`)
	f([]Node{a}, Config{Replicas: -1}, ErrInvalidConfig, "Config.Replicas must be >= 1, got -1")
	f([]Node{a}, Config{VNodes: -1}, ErrInvalidConfig, "Config.VNodes must be in [1, 65536], got -1")
	f(nil, Config{VNodes: MaxVNodes + 1}, ErrInvalidConfig, "Config.VNodes")
}

// errString returns err's message, or "" for nil, so a table row can match on it.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestAccessors(t *testing.T) {
	in := []Node{
		{ID: "c", Addr: "10.0.0.3:7000", Zone: "z2"},
		{ID: "a", Addr: "10.0.0.1:7000", Zone: "z1"},
		{ID: "b", Addr: "10.0.0.2:7000"},
	}
	r, err := New(42, in, Config{Replicas: 2, VNodes: 16})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got := r.Revision(); got != 42 {
		t.Fatalf("Revision(): got %d; want 42", got)
	}
	if got, want := ids(r.Nodes()), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("Nodes(): got %v; want %v", got, want)
	}
	r.Nodes()[0].ID = "mutated"
	if got := r.Nodes()[0].ID; got != "a" {
		t.Fatalf("Nodes() after mutating a returned copy: got %q; want %q", got, "a")
	}
	if got, ok := r.Node("c"); !ok || got != in[0] {
		t.Fatalf("Node(c): got %+v, %v; want %+v, true", got, ok, in[0])
	}
	if got, ok := r.Node("d"); ok {
		t.Fatalf("Node(d): got %+v, true; want false", got)
	}
	if got := r.Len(); got != 3 {
		t.Fatalf("Len(): got %d; want 3", got)
	}
}

func TestEmptyRing(t *testing.T) {
	r := mustNew(t, nil, DefaultConfig())
	if got := r.Replicas([]byte("k")); got != nil {
		t.Fatalf("empty ring Replicas: got %v; want nil", got)
	}
	if r.Owns("n1", []byte("k")) {
		t.Fatalf("empty ring Owns(n1): got true; want false")
	}
	if got := r.Len(); got != 0 {
		t.Fatalf("empty ring Len(): got %d; want 0", got)
	}
}

// TestFewerNodesThanReplicas checks that a ring smaller than N places every
// key on all of its nodes, each once.
func TestFewerNodesThanReplicas(t *testing.T) {
	f := func(nodes []Node, replicas int) {
		t.Helper()
		r := mustNew(t, nodes, Config{Replicas: replicas, VNodes: 64})
		for _, key := range randomKeys(3, 500) {
			set := r.Replicas(key)
			checkReplicaSet(t, key, set, len(nodes))
		}
	}
	f(numberedNodes(1), 3)
	f(numberedNodes(2), 3)
	f(numberedNodes(3), 3)
	f(numberedNodes(4), 7)
	f(zonedNodes("a", "a", "b"), 5)
}

// TestShuffledInputSamePlacement checks that placement depends on the set
// of nodes, not on the order New receives them in.
func TestShuffledInputSamePlacement(t *testing.T) {
	nodes := zonedNodes("a", "b", "c", "a", "b", "c", "a", "")
	keys := randomKeys(4, 2000)
	want := mustNew(t, nodes, DefaultConfig())
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 5 {
		shuffled := slices.Clone(nodes)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := mustNew(t, shuffled, DefaultConfig())
		for _, key := range keys {
			g, w := ids(got.Replicas(key)), ids(want.Replicas(key))
			if !slices.Equal(g, w) {
				t.Fatalf("round %d, order %v, key %x: got %v; want %v", round, ids(shuffled), key, g, w)
			}
		}
	}
}

// TestOwns checks Owns against Replicas, and that unknown IDs own nothing.
func TestOwns(t *testing.T) {
	r := mustNew(t, zonedNodes("a", "b", "a", "b", "c"), Config{VNodes: 64})
	for _, key := range randomKeys(7, 300) {
		set := ids(r.Replicas(key))
		for _, n := range r.Nodes() {
			if got, want := r.Owns(n.ID, key), slices.Contains(set, n.ID); got != want {
				t.Fatalf("Owns(%s, %x): got %v; want %v (replicas %v)", n.ID, key, got, want, set)
			}
		}
		if r.Owns("nobody", key) {
			t.Fatalf("Owns(nobody, %x): got true; want false", key)
		}
	}
}
