package ring

import (
	"fmt"
	"slices"
	"strings"
)

// Node is one member of the ring.
type Node struct {
	// ID names the node. It must be non-empty and unique within a ring. The
	// ID, not the address, decides where the node's points sit, so a node
	// keeps its data when it moves to a new address.
	ID string
	// Addr is the host:port the node serves on. It must be non-empty; the
	// ring carries it but never looks inside it.
	Addr string
	// Zone is an optional failure domain (rack, availability zone). When any
	// node of a ring has a Zone, replica sets spread over as many zones as
	// they can, and an empty Zone counts as one more zone named "".
	Zone string
}

// Ring is an immutable consistent-hash ring. It is built by New and never
// changes afterwards, so any number of goroutines may read one ring without
// locks; a membership change builds a new Ring to be swapped in whole.
type Ring struct {
	revision int64
	cfg      Config
	nodes    []Node   // sorted by ID; owners index into it
	zoneOf   []int32  // zone number of each node; nil when no node has a Zone
	zones    int      // number of distinct zones; 0 when no node has a Zone
	points   []uint64 // vnode positions, ascending
	owners   []int32  // owners[i] is the index in nodes of points[i]
}

// New builds the ring of nodes under cfg. Zero fields of cfg take their
// defaults (see Config). revision is the etcd revision of the ring record,
// the fencing token replicas compare; the ring only carries it.
//
// The order of nodes does not matter: two calls with the same nodes in any
// order build rings that place every key identically. Zero nodes make an
// empty ring, on which Replicas returns nil.
//
// New returns an error wrapping ErrInvalidConfig, ErrInvalidNode or
// ErrDuplicateNode when cfg or a node is invalid.
func New(revision int64, nodes []Node, cfg Config) (*Ring, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkNodes(nodes); err != nil {
		return nil, err
	}
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	r := &Ring{revision: revision, cfg: cfg, nodes: sorted}
	r.zoneOf, r.zones = numberZones(sorted)
	r.points, r.owners = buildPoints(sorted, cfg.VNodes)
	return r, nil
}

// checkNodes rejects empty IDs, empty addresses and duplicate IDs.
func checkNodes(nodes []Node) error {
	seen := make(map[string]int, len(nodes))
	for i, n := range nodes {
		if n.ID == "" {
			return fmt.Errorf("%w: nodes[%d].ID is empty", ErrInvalidNode, i)
		}
		if n.Addr == "" {
			return fmt.Errorf("%w: nodes[%d].Addr is empty (ID %q)", ErrInvalidNode, i, n.ID)
		}
		if j, dup := seen[n.ID]; dup {
			return fmt.Errorf("%w: %q at nodes[%d] and nodes[%d]", ErrDuplicateNode, n.ID, j, i)
		}
		seen[n.ID] = i
	}
	return nil
}

// numberZones gives each distinct Zone a small number so that the replica
// walk compares ints, not strings. It returns nil, 0 when no node has a Zone.
func numberZones(nodes []Node) ([]int32, int) {
	if !slices.ContainsFunc(nodes, func(n Node) bool { return n.Zone != "" }) {
		return nil, 0
	}
	ids := make(map[string]int32)
	zoneOf := make([]int32, len(nodes))
	for i, n := range nodes {
		z, ok := ids[n.Zone]
		if !ok {
			z = int32(len(ids))
			ids[n.Zone] = z
		}
		zoneOf[i] = z
	}
	return zoneOf, len(ids)
}

// Revision returns the ring record's etcd revision given to New.
func (r *Ring) Revision() int64 { return r.revision }

// Config returns the configuration the ring was built with, defaults filled.
func (r *Ring) Config() Config { return r.cfg }

// Nodes returns a copy of the members, sorted by ID.
func (r *Ring) Nodes() []Node { return slices.Clone(r.nodes) }

// Node returns the member with the given ID, if there is one.
func (r *Ring) Node(id string) (Node, bool) {
	i, ok := r.indexOf(id)
	if !ok {
		return Node{}, false
	}
	return r.nodes[i], true
}

// Len returns the number of members (nodes, not virtual nodes).
func (r *Ring) Len() int { return len(r.nodes) }

// ReplicationFactor returns N, the configured number of replicas per key.
// Replicas returns fewer when the ring has fewer than N members.
func (r *Ring) ReplicationFactor() int { return r.cfg.Replicas }

// indexOf finds a member's index in r.nodes by binary search.
func (r *Ring) indexOf(id string) (int, bool) {
	return slices.BinarySearchFunc(r.nodes, id, func(n Node, id string) int {
		return strings.Compare(n.ID, id)
	})
}
