package tests

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/ring"
)

// Deletes during moves (docs/repair.md, "Deletes during moves"): a delete
// acknowledged while a join or a drain is under way stays a delete on every
// node, through shedding, the drain and the tombstones' expiry.

// moveTune makes repair fast and the tombstone grace short (3 s), so a
// test can wait past it.
func moveTune(cfg *datanode.Config) {
	cfg.AntiEntropyInterval, cfg.AntiEntropyRate = 300*time.Millisecond, 100000
	cfg.HintInterval, cfg.HintMaxAge = 100*time.Millisecond, time.Second
	cfg.HealthyMarkInterval, cfg.TombstoneGrace = 100*time.Millisecond, 3*time.Second
	cfg.ScrubInterval = 0
}

// setRepairPaused pauses or resumes repair cluster-wide and waits until
// every running node sees it.
func setRepairPaused(t *testing.T, c *Cluster, paused bool) {
	t.Helper()
	if err := c.Client(0).SetRepairPaused(ctxT(t), paused); err != nil {
		t.Fatal(err)
	}
	for i := range c.Nodes {
		Eventually(t, 10*time.Second, c.Nodes[i].ID+" sees the pause setting", func() bool {
			return status(t, c, i).Repair.Paused == paused
		})
	}
}

// holders lists the nodes whose own store holds a copy of oid.
func holders(t *testing.T, c *Cluster, oid api.OID) []string {
	t.Helper()
	var out []string
	for i := range c.Nodes {
		if c.Nodes[i].Node != nil && local(t, c, i, oid) == "copy" {
			out = append(out, c.Nodes[i].ID)
		}
	}
	return out
}

// checkStaysDeleted waits until no node holds a copy of a deleted object,
// then until every tombstone of them has expired (the grace period), then
// (if rounds) for three more anti-entropy rounds on every node, and checks
// that no node holds a copy and no read at one through any node finds one.
func checkStaysDeleted(t *testing.T, c *Cluster, deleted map[api.OID][]byte, rounds bool) {
	t.Helper()
	for oid := range deleted {
		Eventually(t, 30*time.Second, "no node holds a copy of deleted "+oid.String(), func() bool {
			return len(holders(t, c, oid)) == 0
		})
	}
	for i := range c.Nodes {
		Eventually(t, 30*time.Second, c.Nodes[i].ID+" expired the tombstones", func() bool {
			for oid := range deleted {
				if local(t, c, i, oid) != "nothing" {
					return false
				}
			}
			return true
		})
	}
	if rounds {
		waitRounds(t, c, 3)
	}
	for oid := range deleted {
		if h := holders(t, c, oid); len(h) > 0 {
			t.Fatalf("deleted %s is back after the grace period: copies on %v; want none", oid, h)
		}
		for i := range c.Nodes {
			if _, err := c.Client(i).GetBytes(ctxT(t), oid, api.One); !errors.Is(err, api.ErrNotFound) {
				t.Fatalf("deleted %s read at one through %s after the grace period: %v; want not found", oid, c.Nodes[i].ID, err)
			}
		}
	}
}

// waitRounds waits until every node has completed k more anti-entropy
// rounds.
func waitRounds(t *testing.T, c *Cluster, k float64) {
	t.Helper()
	const rounds = "stratum_antientropy_rounds_total"
	start := make([]float64, len(c.Nodes))
	for i := range c.Nodes {
		start[i] = metric(t, c, i, rounds)
	}
	for i := range c.Nodes {
		Eventually(t, 30*time.Second, c.Nodes[i].ID+" ran more anti-entropy rounds", func() bool {
			return metric(t, c, i, rounds) >= start[i]+k
		})
	}
}

// formerOwner returns the index of the node that prev placed oid on and
// next does not.
func formerOwner(c *Cluster, prev, next *ring.Ring, oid api.OID) (int, bool) {
	key := []byte(oid.String())
	for _, p := range prev.Replicas(key) {
		if !next.Owns(p.ID, key) {
			for i := range c.Nodes {
				if c.Nodes[i].ID == p.ID {
					return i, true
				}
			}
		}
	}
	return 0, false
}

// A fourth node joins while repair is paused, so the former owners still
// hold the copies the join moved; those objects are deleted at quorum
// then. Once repair resumes, the former owners drop their copies instead
// of sending them to the new owners, and after the tombstones expire no
// path brings one back.
func TestDeleteDuringJoinStaysDeleted(t *testing.T) {
	c := MustStartCluster(t, 3, moveTune)
	objs := putMany(t, c, 0, 60, api.All)
	prev := c.Nodes[0].Node.Ring()
	setRepairPaused(t, c, true)
	c.AddNode()
	c.WaitRingConverged()
	setRepairPaused(t, c, true)
	next := c.Nodes[3].Node.Ring()
	deleted, kept := map[api.OID][]byte{}, map[api.OID][]byte{}
	for oid, data := range objs {
		f, moved := formerOwner(c, prev, next, oid)
		if !moved || len(deleted) == 12 {
			kept[oid] = data
			continue
		}
		if got := local(t, c, f, oid); got != "copy" {
			t.Fatalf("former owner %s holds %s for %s before the delete; want its copy", c.Nodes[f].ID, got, oid)
		}
		if rec, err := c.Client(0).Delete(ctxT(t), oid, api.Quorum); err != nil || !rec.Existed {
			t.Fatalf("delete %s during the join: %+v, %v", oid, rec, err)
		}
		deleted[oid] = data
	}
	if len(deleted) < 5 {
		t.Fatalf("the join moved %d of %d objects; want at least 5 to delete", len(deleted), len(objs))
	}
	setRepairPaused(t, c, false)
	checkStaysDeleted(t, c, deleted, true)
	checkAllReadable(t, c.Client(3), kept)
}

// A node drains while repair is paused; objects it holds are deleted at
// quorum (the write placement leaves it out). Anti-entropy is off, so
// the drain alone must learn of the tombstones (no peer's round sends
// them). Once repair resumes the node reaches drained, and the deleted
// objects never come back, from it or from anywhere, after the tombstones
// expire.
func TestDeleteDuringDrainStaysDeleted(t *testing.T) {
	c := MustStartCluster(t, 4, func(cfg *datanode.Config) {
		moveTune(cfg)
		cfg.AntiEntropyInterval = 0
	})
	objs := putMany(t, c, 0, 60, api.All)
	setRepairPaused(t, c, true)
	if err := c.Client(0).NodeAction(ctxT(t), "n4", "drain", false); err != nil {
		t.Fatal(err)
	}
	r := c.Nodes[0].Node.Ring()
	seed := int64(0)
	Eventually(t, 10*time.Second, "n1's writes leave the draining n4 out", func() bool {
		for {
			seed++
			data := randomBytes(9000+seed, 64)
			oid, _ := api.Digest(api.SHA256, data)
			if !r.Owns("n4", []byte(oid.String())) {
				continue
			}
			rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA256, api.Quorum)
			if err != nil {
				t.Fatal(err)
			}
			// n4 must not be a target at all: a replica still writing is
			// listed as pending, not acked.
			for _, id := range append(append(rec.Acked, rec.Pending...), rec.Failed...) {
				if id == "n4" {
					return false
				}
			}
			return true
		}
	})
	deleted, kept := map[api.OID][]byte{}, map[api.OID][]byte{}
	for oid, data := range objs {
		if local(t, c, 3, oid) != "copy" || len(deleted) == 12 {
			kept[oid] = data
			continue
		}
		rec, err := c.Client(0).Delete(ctxT(t), oid, api.Quorum)
		if err != nil || !rec.Existed {
			t.Fatalf("delete %s during the drain: %+v, %v", oid, rec, err)
		}
		for _, id := range rec.Acked {
			if id == "n4" {
				t.Fatalf("the delete of %s went to the draining n4 as an owner: %+v", oid, rec)
			}
		}
		deleted[oid] = data
	}
	if len(deleted) < 5 {
		t.Fatalf("n4 holds %d of the %d objects; want at least 5 to delete", len(deleted), len(objs))
	}
	setRepairPaused(t, c, false)
	Eventually(t, 30*time.Second, "n4 drained", func() bool {
		m, _, err := c.CP.Member(ctxT(t), "n4")
		return err == nil && m.State == api.StateDraining && m.Drained
	})
	checkStaysDeleted(t, c, deleted, false)
	checkAllReadable(t, c.Client(0), kept)
}

// A fourth node joins while repair is paused and the objects it now owns
// are written again (so it holds copies, as do the former owners). Then
// every copy on the new placement is damaged on disk: their index entries
// stay, their bytes rot. The former owner must not take those entries for
// copies: it removes its own only once the owners hold verified copies
// (its pushes replace the damaged ones), so every object stays readable.
func TestShedKeepsCopyUntilOwnersHoldVerifiedOnes(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		moveTune(cfg)
		cfg.Store.LargeThreshold = 1024 // every object below is a file that can be damaged
	})
	objs := map[api.OID][]byte{}
	for k := range 30 {
		data := randomBytes(int64(7000+k), 8<<10)
		rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA256, api.All)
		if err != nil {
			t.Fatal(err)
		}
		objs[api.MustParseOID(rec.OID)] = data
	}
	prev := c.Nodes[0].Node.Ring()
	setRepairPaused(t, c, true)
	c.AddNode()
	c.WaitRingConverged()
	setRepairPaused(t, c, true)
	next := c.Nodes[3].Node.Ring()
	moved := map[api.OID]int{}
	for oid, data := range objs {
		f, ok := formerOwner(c, prev, next, oid)
		if !ok {
			continue
		}
		moved[oid] = f
		if _, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA256, api.All); err != nil {
			t.Fatalf("put %s again on the new placement: %v", oid, err)
		}
		for _, rn := range next.Replicas([]byte(oid.String())) {
			i := nodeIndex(t, c, rn.ID)
			rot(t, filepath.Join(c.Nodes[i].Dir, "objects", oid.String()[:2], oid.String()))
		}
		if got := local(t, c, f, oid); got != "copy" {
			t.Fatalf("former owner %s holds %s for %s; want its copy", c.Nodes[f].ID, got, oid)
		}
	}
	if len(moved) < 3 {
		t.Fatalf("the join moved %d of %d objects; want at least 3", len(moved), len(objs))
	}
	setRepairPaused(t, c, false)
	for oid, f := range moved {
		Eventually(t, 30*time.Second, c.Nodes[f].ID+" shed "+oid.String(), func() bool { return local(t, c, f, oid) == "nothing" })
	}
	for oid := range moved {
		for i := range c.Nodes {
			got, err := c.Client(i).GetBytes(ctxT(t), oid, api.Quorum)
			if err != nil || string(got) != string(objs[oid]) {
				t.Fatalf("%s read at quorum through %s after its former owner shed it: %d bytes, %v; want its %d bytes",
					oid, c.Nodes[i].ID, len(got), err, len(objs[oid]))
			}
		}
	}
}

func nodeIndex(t *testing.T, c *Cluster, id string) int {
	t.Helper()
	for i := range c.Nodes {
		if c.Nodes[i].ID == id {
			return i
		}
	}
	t.Fatalf("no node %s", id)
	return -1
}

// rot flips one byte in the middle of a stored object file.
func rot(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("damage %s: %v", path, err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
