package tests

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

func TestDrainThenRemove(t *testing.T) {
	c := MustStartCluster(t, 4, nil)
	cl := c.Client(0)
	var oids []api.OID
	var blobs [][]byte
	for i := 0; i < 30; i++ {
		data := randomBytes(int64(1000+i), 512+i)
		rec, err := cl.PutBytes(ctxT(t), data, api.SHA256, api.All)
		if err != nil {
			t.Fatal(err)
		}
		oids, blobs = append(oids, api.MustParseOID(rec.OID)), append(blobs, data)
	}
	// Refusals: an unknown node, an undrained node, an unknown action.
	if err := cl.NodeAction(ctxT(t), "nope", "remove", false); !errors.Is(err, api.ErrUnknownNode) {
		t.Fatalf("remove unknown node: %v; want unknown_node", err)
	}
	if err := cl.NodeAction(ctxT(t), "nope", "drain", false); !errors.Is(err, api.ErrUnknownNode) {
		t.Fatalf("drain unknown node: %v; want unknown_node", err)
	}
	if err := cl.NodeAction(ctxT(t), "n4", "remove", false); !errors.Is(err, api.ErrUnsafe) {
		t.Fatalf("remove an undrained node: %v; want unsafe", err)
	}
	held := c.Nodes[3].Node.Status().Objects
	if held == 0 {
		t.Fatal("n4 holds no objects; the drain would prove nothing")
	}
	if err := cl.NodeAction(ctxT(t), "n4", "drain", false); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, "n4 drained", func() bool {
		m, _, _ := c.CP.Member(ctxT(t), "n4")
		return m.State == api.StateDraining && m.Drained
	})
	// A drained node holds nothing, and every object has its 3 copies on
	// the other nodes.
	if got := c.Nodes[3].Node.Status().Objects; got != 0 {
		t.Fatalf("drained n4 still holds %d objects; want 0", got)
	}
	for _, oid := range oids {
		copies := 0
		for i := 0; i < 3; i++ {
			if local(t, c, i, oid) == "copy" {
				copies++
			}
		}
		if copies != 3 {
			t.Fatalf("after the drain %s has %d copies on n1-n3; want 3", oid, copies)
		}
	}
	// While draining, n4 takes no new writes as an owner.
	for i := 0; i < 10; i++ {
		rec, err := cl.PutBytes(ctxT(t), randomBytes(int64(5000+i), 100), api.SHA256, api.All)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range rec.Acked {
			if id == "n4" {
				t.Fatalf("a write during the drain went to n4: %+v", rec)
			}
		}
	}
	if err := cl.NodeAction(ctxT(t), "n4", "remove", false); err != nil {
		t.Fatalf("remove a drained node: %v", err)
	}
	c.StopNode(3)
	c.WaitRingConverged()
	nodes, err := cl.Nodes(ctxT(t))
	if err != nil || len(nodes) != 3 {
		t.Fatalf("node list after removal: %+v %v; want 3 nodes", nodes, err)
	}
	// Every object is still readable at all from the three that remain.
	for i, oid := range oids {
		got, err := c.Client(1).GetBytes(ctxT(t), oid, api.All)
		if err != nil || !bytes.Equal(got, blobs[i]) {
			t.Fatalf("after removing n4, get %s at all: %v", oid, err)
		}
	}
	// Removing below the replication factor is unsafe, even with a drained node.
	if err := cl.NodeAction(ctxT(t), "n3", "drain", false); err != nil {
		t.Fatal(err)
	}
	if err := cl.NodeAction(ctxT(t), "n3", "remove", false); !errors.Is(err, api.ErrUnsafe) {
		t.Fatalf("remove leaving 2 nodes for N=3: %v; want unsafe", err)
	}
	if err := cl.NodeAction(ctxT(t), "n3", "remove", true); err != nil {
		t.Fatalf("forced remove: %v", err)
	}
}

func TestBreakerOpensAndCloses(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) { cfg.BreakerCooldown = 300 * time.Millisecond })
	addr := c.Nodes[2].Addr
	c.StopNode(2)
	breaker := func() api.BreakerState {
		for _, b := range c.Nodes[0].Node.Cluster(ctxT(t)).Breakers {
			if b.Peer == addr {
				return b
			}
		}
		return api.BreakerState{}
	}
	i := int64(0)
	Eventually(t, 20*time.Second, "breaker opens for the stopped peer", func() bool {
		i++
		c.Client(0).PutBytes(ctxT(t), randomBytes(i, 64), api.SHA256, api.Quorum)
		return breaker().State == "open"
	})
	if b := breaker(); b.Failures < 5 {
		t.Fatalf("breaker for the stopped peer: %+v; want open after >= 5 failures", b)
	}
	doc, _ := c.Client(0).Cluster(ctxT(t))
	if len(doc.Breakers) == 0 {
		t.Fatal("cluster status shows no breakers")
	}
	c.StartNode(2)
	c.WaitRingConverged()
	Eventually(t, 10*time.Second, "breaker closes once the peer answers", func() bool {
		c.Client(0).PutBytes(ctxT(t), randomBytes(time.Now().UnixNano(), 64), api.SHA256, api.All)
		return breaker().State == "closed"
	})
}
