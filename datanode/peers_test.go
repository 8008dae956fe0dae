package datanode

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/ring"
)

// The peer client map holds the current ring's addresses only: a ring
// change drops the clients (and breakers) of nodes removed or moved to
// another address, and of addresses seen elsewhere meanwhile.
func TestPeerClientsFollowTheRing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ID = "a"
	n := &Node{cfg: cfg, logger: slog.New(slog.DiscardHandler)}
	n.peers = n.newPeers()
	n.view.Store(&clusterview.View{})
	mustRing := func(rev int64, addrs ...string) *ring.Ring {
		t.Helper()
		var nodes []ring.Node
		for _, a := range addrs {
			nodes = append(nodes, ring.Node{ID: a[:1], Addr: a})
		}
		r, err := ring.New(rev, nodes, ring.Config{Replicas: 3, VNodes: 16})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	addrs := func() []string {
		var out []string
		for _, s := range n.peers.States() {
			out = append(out, s.Peer)
		}
		return out
	}
	f := func(r *ring.Ring, seen []string, want []string) {
		t.Helper()
		for _, a := range seen {
			n.peers.Get(a)
		}
		n.publishRing(r)
		if got := addrs(); !slices.Equal(got, want) {
			t.Fatalf("peer clients after ring %d: %v; want %v", r.Revision(), got, want)
		}
	}
	f(mustRing(1, "a:1", "b:1", "c:1"), []string{"b:1", "c:1", "x:9"}, []string{"b:1", "c:1"})
	f(mustRing(2, "a:1", "b:2", "c:1", "d:1"), []string{"d:1"}, []string{"c:1", "d:1"}) // b moved; d joined
	f(mustRing(3, "a:1", "b:2", "d:1"), []string{"b:2"}, []string{"b:2", "d:1"})        // c removed
}
