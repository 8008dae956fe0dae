package tests

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/ring"
)

// A ref transaction's primary whose ring is stale still confirms the new
// tips at quorum: the replicas refuse its presence round (stale_ring), it
// reloads the ring and asks again, as a single read does. Before, the
// refusals counted as missing answers and the transaction failed with
// quorum_not_reached (a Git push after a ring change was rejected).
func TestRefTxnPrimaryWithStaleRingConfirmsObjects(t *testing.T) {
	deaf := map[string]*ringDeafControl{}
	c := refsCluster(t, 3, 1, func(cfg *datanode.Config) {
		if cfg.ID == "n4" {
			return
		}
		d := deaf[cfg.ID]
		if d == nil {
			d = &ringDeafControl{}
			deaf[cfg.ID] = d
		}
		d.ControlPlane = cfg.Control
		cfg.Control = d
	})
	ctx := ctxT(t)
	primary := -1
	for i := range c.Nodes {
		rep, err := c.Client(i).Partitions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range rep.Partitions {
			if p.Serving {
				primary = i
			}
		}
	}
	if primary < 0 {
		t.Fatal("no node serves partition 0")
	}
	other := (primary + 1) % 3
	// The tip is stored first: a write under the new ring would reach the
	// primary with the newer revision, and it would reload its ring.
	rec, err := c.Client(other).PutBytes(ctx, []byte("a tip stored before the ring changes"), api.SHA1, api.Quorum)
	if err != nil {
		t.Fatal(err)
	}
	deaf[c.Nodes[primary].ID].deaf.Store(true) // the primary stops hearing about ring changes
	before := c.Nodes[primary].Node.Ring().Revision()
	c.AddNode()
	for i := range 3 {
		if i == primary {
			continue
		}
		Eventually(t, 10*time.Second, c.Nodes[i].ID+" sees 4 nodes", func() bool { return c.Nodes[i].Node.Ring().Len() == 4 })
	}
	if got := c.Nodes[primary].Node.Ring().Revision(); got != before {
		t.Fatalf("the primary learned ring %d before the transaction (had %d): the test would not test a stale ring", got, before)
	}
	txn := api.RefTxn{Updates: []api.RefUpdate{{Name: "refs/heads/main", Old: api.ZeroOID, New: rec.OID}}}
	if _, err := c.Client(other).RefTxn(ctx, "stale/primary.git", txn, true); err != nil {
		t.Fatalf("transaction through a primary with a stale ring: %v", err)
	}
	if got := c.Nodes[primary].Node.Ring().Len(); got != 4 {
		t.Fatalf("the primary's ring has %d nodes after the transaction; want the reloaded 4", got)
	}
}

// ringDeafControl wraps a control plane so that, once deaf, the node's ring
// watch delivers nothing: its ring stays what it was until the node
// reloads it itself.
type ringDeafControl struct {
	datanode.ControlPlane
	deaf atomic.Bool
}

func (d *ringDeafControl) WatchRing(ctx context.Context, publish func(*ring.Ring)) error {
	return d.ControlPlane.WatchRing(ctx, func(r *ring.Ring) {
		if !d.deaf.Load() {
			publish(r)
		}
	})
}
