package tests

import (
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/datanode"
)

// A fourth node joins a 3-node cluster holding 5,000 objects: anti-entropy
// between the new owners copies it its share (about a quarter of all
// copies), the old owners then delete the copies they no longer own, no
// object is lost, and readers running throughout the move and the
// deletions never get a 404 for an acknowledged object.
func TestJoinMovesAQuarterWithoutLosingReads(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.AntiEntropyInterval, cfg.AntiEntropyRate = 300*time.Millisecond, 100000
	})
	objs := putBatches(t, c, 5000)
	oids := make([]api.OID, 0, len(objs))
	for oid := range objs {
		oids = append(oids, oid)
	}
	var reads, notFound atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(r)))
			clients := []*client.Client{c.Client(0), c.Client(1), c.Client(2)}
			for {
				select {
				case <-stop:
					return
				default:
				}
				oid := oids[rng.Intn(len(oids))]
				_, err := clients[rng.Intn(3)].GetBytes(ctxT(t), oid, api.Quorum)
				reads.Add(1)
				if errors.Is(err, api.ErrNotFound) {
					notFound.Add(1)
					t.Errorf("acknowledged object %s read as not found during the move", oid)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	c.AddNode()
	c.WaitRingConverged()
	r := c.Nodes[3].Node.Ring()
	share := 0
	for _, oid := range oids {
		for _, rn := range r.Replicas([]byte(oid.String())) {
			if rn.ID == "n4" {
				share++
			}
		}
	}
	if frac := float64(share) / float64(3*len(oids)); frac < 0.20 || frac > 0.30 {
		t.Fatalf("n4 owns %d of %d copies (%.0f%%); want about a quarter", share, 3*len(oids), 100*frac)
	}
	Eventually(t, 60*time.Second, "n4 holds its share", func() bool { return c.Nodes[3].Node.Status().Objects == int64(share) })
	// The old owners shed the copies the ring moved, once n4 confirms it
	// holds them: N copies in all, each on a node the ring places it on.
	Eventually(t, 60*time.Second, "old copies shed", func() bool { return totalObjects(c) == int64(3*len(oids)) })
	for i := range c.Nodes {
		want := 0
		for _, oid := range oids {
			for _, rn := range r.Replicas([]byte(oid.String())) {
				if rn.ID == c.Nodes[i].ID {
					want++
				}
			}
		}
		if got := c.Nodes[i].Node.Status().Objects; got != int64(want) {
			t.Fatalf("%s holds %d copies after shedding; the ring places %d on it", c.Nodes[i].ID, got, want)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("n4 received its %d copies (%.0f%% of all); %d reads during the move, %d not found",
		share, 100*float64(share)/float64(3*len(oids)), reads.Load(), notFound.Load())
	checkAllReadable(t, c.Client(3), objs)
}

// checkAllReadable reads every object back at quorum with batch GETs of
// 1,000 and compares the bytes.
func checkAllReadable(t *testing.T, cl *client.Client, objs map[api.OID][]byte) {
	t.Helper()
	oids := slices.Collect(maps.Keys(objs))
	for start := 0; start < len(oids); start += 1000 {
		seen := 0
		err := cl.GetMany(ctxT(t), oids[start:min(start+1000, len(oids))], api.Quorum, func(oid api.OID, data []byte, err error) {
			seen++
			if err != nil || string(data) != string(objs[oid]) {
				t.Errorf("%s read back: %v", oid, err)
			}
		})
		if err != nil || seen != min(1000, len(oids)-start) {
			t.Fatalf("batch read at %d: %d objects, %v", start, seen, err)
		}
	}
}

// putBatches stores count small objects at quorum with batch PUTs of 500
// through node 0 and returns them.
func putBatches(t *testing.T, c *Cluster, count int) map[api.OID][]byte {
	t.Helper()
	objs := map[api.OID][]byte{}
	for start := 0; start < count; start += 500 {
		var batch []client.Object
		for k := start; k < min(start+500, count); k++ {
			data := []byte(fmt.Sprintf("batch object %d of %s", k, t.Name()))
			oid, _ := api.Digest(api.SHA1, data)
			batch = append(batch, client.Object{OID: oid, Data: data})
			objs[oid] = data
		}
		rep, err := c.Client(0).PutBatch(ctxT(t), batch, api.Quorum)
		if err != nil || rep.Stored != len(batch) {
			t.Fatalf("batch at %d: stored %d of %d: %v", start, rep.Stored, len(batch), err)
		}
	}
	return objs
}

// One node is down during 1,000 writes; after it returns every object is on
// all three replicas within a bounded time (hints and the downtime recovery
// round, at their default settings but for a faster anti-entropy rate).
func TestReturningNodeGetsEveryMissedWrite(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) { cfg.AntiEntropyRate = 100000 })
	c.StopNode(2)
	objs := putMany(t, c, 0, 1000, api.Quorum)
	back := time.Now()
	c.StartNode(2)
	for i := range c.Nodes {
		Eventually(t, 30*time.Second, c.Nodes[i].ID+" holds all 1000", func() bool { return c.Nodes[i].Node.Status().Objects == 1000 })
	}
	t.Logf("every object on all 3 replicas %s after the node returned", time.Since(back).Round(10*time.Millisecond))
	for oid, want := range objs {
		got, err := c.Client(2).GetBytes(ctxT(t), oid, api.One)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s on n3: %v", oid, err)
		}
	}
}

// A cluster-wide pause holds repair where it is: a returning node gets
// nothing while paused (its recovery round waits), and everything once
// resumed; the status document shows the pause and the round's progress.
func TestRepairPauseAndResume(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.HintInterval, cfg.AntiEntropyInterval, cfg.AntiEntropyRate = time.Hour, 200*time.Millisecond, 100000
	})
	c.StopNode(2)
	putMany(t, c, 0, 50, api.Quorum)
	Eventually(t, 10*time.Second, "n1 holds 50 hints", func() bool { return status(t, c, 0).HintsPending == 50 })
	Eventually(t, 10*time.Second, "the cluster document shows n3 down and the hints", func() bool {
		doc, err := c.Client(0).Cluster(ctxT(t))
		return err == nil && slices.Contains(doc.AtRisk.NodesNotLive, "n3") && doc.AtRisk.HintsPending == 50 && len(doc.Repair) == 2
	})
	if err := c.Client(0).SetRepairPaused(ctxT(t), true); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "every node sees the pause", func() bool {
		for i := 0; i < 2; i++ {
			if !status(t, c, i).Repair.Paused {
				return false
			}
		}
		return true
	})
	c.StartNode(2)
	Eventually(t, 10*time.Second, "n3 sees the pause", func() bool { return status(t, c, 2).Repair.Paused })
	time.Sleep(1500 * time.Millisecond) // several intervals
	if got := c.Nodes[2].Node.Status().Objects; got != 0 {
		t.Fatalf("n3 received %d objects while repair was paused; want 0", got)
	}
	if got := metric(t, c, 2, "stratum_repair_paused"); got != 1 {
		t.Fatalf("stratum_repair_paused = %v while paused; want 1", got)
	}
	if page := getBody(t, c.URL(2)+"/ui/"); !strings.Contains(page, "PAUSED cluster-wide") {
		t.Fatalf("status page does not show the pause:\n%s", page)
	}
	if doc, err := c.Client(2).Cluster(ctxT(t)); err != nil || !doc.AtRisk.RepairPaused || len(doc.Repair) != 3 || !doc.Repair["n1"].Paused {
		t.Fatalf("cluster document while paused: %+v %v; want at_risk.repair_paused and every node's progress", doc, err)
	}
	if err := c.Client(1).SetRepairPaused(ctxT(t), false); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 15*time.Second, "n3 repaired after resume", func() bool { return c.Nodes[2].Node.Status().Objects == 50 })
	// Whichever nodes did the copying (n3 pulling, or n1 and n2 pushing)
	// report a round that found and copied objects.
	worked := false
	for i := range c.Nodes {
		p, err := c.Client(i).RepairProgress(ctxT(t))
		if err != nil || p.Paused || p.Copied > p.Found {
			t.Fatalf("%s progress %+v, %v; want resumed and copied <= found", c.Nodes[i].ID, p, err)
		}
		worked = worked || (p.Started != nil && p.Copied > 0)
	}
	if !worked {
		t.Fatal("no node reports a round that copied anything")
	}
	moved := 0.0
	for i := range c.Nodes {
		moved += max(metric(t, c, i, `stratum_antientropy_bytes_total\{direction="push"\}`), 0) + max(metric(t, c, i, `stratum_antientropy_bytes_total\{direction="pull"\}`), 0)
	}
	if moved < 50*20 {
		t.Fatalf("anti-entropy byte counters total %v; want at least the 50 objects' bytes", moved)
	}
}

// A rebalance interrupted halfway (the joining node stops while it is
// being filled) resumes when the node returns and finishes: anti-entropy
// keeps no state between rounds, so the next round simply compares again.
func TestInterruptedRebalanceResumes(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.AntiEntropyInterval, cfg.AntiEntropyRate = 200*time.Millisecond, 300
	})
	objs := putMany(t, c, 0, 1200, api.Quorum)
	c.AddNode()
	c.WaitRingConverged()
	r := c.Nodes[3].Node.Ring()
	share := int64(0)
	for oid := range objs {
		for _, rn := range r.Replicas([]byte(oid.String())) {
			if rn.ID == "n4" {
				share++
			}
		}
	}
	Eventually(t, 30*time.Second, "n4 partly filled", func() bool { return c.Nodes[3].Node.Status().Objects >= 100 })
	if got := c.Nodes[3].Node.Status().Objects; got >= share {
		t.Fatalf("n4 already holds %d of its %d before the interruption; the test proves nothing", got, share)
	}
	c.StopNode(3)
	c.StartNode(3)
	Eventually(t, 60*time.Second, "n4 holds its whole share after the interruption", func() bool {
		return c.Nodes[3].Node.Status().Objects == share
	})
	for oid, want := range objs {
		got, err := c.Client(3).GetBytes(ctxT(t), oid, api.Quorum)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s after the interrupted rebalance: %v", oid, err)
		}
	}
}
