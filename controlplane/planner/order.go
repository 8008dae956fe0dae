package planner

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/stratum-store/stratum/api"
)

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

func clonePartition(p api.Partition) api.Partition {
	p.Replicas, p.InSync, p.Stores = slices.Clone(p.Replicas), slices.Clone(p.InSync), maps.Clone(p.Stores)
	return p
}
