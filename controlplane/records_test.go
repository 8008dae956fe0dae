package controlplane

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// A node allowed to write only its own records (etcd access control on)
// writes, under nodes/n9, members/n9 and joins/n9, records that name n2
// with n2's generation (read from etcd) and its own address. The control
// plane takes identity from the key: n2 does not get the forged address in
// the ring, and when n2 dies the forged liveness record does not keep it
// ACTIVE. Each forged record is skipped and counted.
func TestRecordIdentityComesFromTheKey(t *testing.T) {
	ctx := ctxT(t)
	root, dial := mustAccessEtcd(t)
	for _, id := range []string{"n2", "n9"} {
		if err := root.GrantNode(ctx, id, "pw-"+id); err != nil {
			t.Fatal(err)
		}
	}
	n2, n9 := dial(NodeUser("n2"), "pw-n2"), dial(NodeUser("n9"), "pw-n9")
	cfg := ring.Config{Replicas: 1, VNodes: ring.DefaultVNodes}
	real := ring.Node{ID: "n2", Addr: "10.0.0.2:9001"}
	if err := root.JoinRing(ctx, real, cfg); err != nil {
		t.Fatal(err)
	}
	lease, err := n2.Register(ctx, real, "gen-n2", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.MarkActive(ctx, "n2", "gen-n2"); err != nil {
		t.Fatal(err)
	}

	// n9 forges n2's records under its own keys, which its role may write.
	evil := ring.Node{ID: "n2", Addr: "10.6.6.6:9001"}
	nodeRec, _ := json.Marshal(NodeRecord{ID: "n2", Addr: evil.Addr, Generation: "gen-n2", Started: time.Now()})
	memRec, _ := json.Marshal(api.Member{ID: "n2", State: api.StateActive, Generation: "gen-n2"})
	joinRec, _ := json.Marshal(joinRequest{Node: evil, Replicas: cfg.Replicas, VNodes: cfg.VNodes})
	for key, val := range map[string][]byte{n9.key("nodes", "n9"): nodeRec, n9.key("members", "n9"): memRec, n9.key("joins", "n9"): joinRec} {
		if _, err := n9.etcd.Put(ctx, key, string(val)); err != nil {
			t.Fatalf("n9 writes %s: %v; its role must allow its own keys", key, err)
		}
	}

	runDetector(t, root, testDetectorConfig("leader"))
	lease.Close(ctx) // n2 dies; only the forged record still "heartbeats"
	eventually(t, "n2 SUSPECT or DOWN after its lease ended", func() bool {
		s := state(t, root, "n2")
		return s == api.StateSuspect || s == api.StateDown
	})
	r, err := root.LoadRing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Node("n2"); got.Addr != real.Addr {
		t.Fatalf("n2's ring address: got %q; want %q (the forged join must not be admitted)", got.Addr, real.Addr)
	}
	if nodes, err := root.Nodes(ctx); err != nil || len(nodes) != 0 {
		t.Fatalf("live nodes: got %+v %v; want none (n2 is dead, n9's record names n2)", nodes, err)
	}
	if m, err := root.Members(ctx); err != nil || m["n2"].Generation != "gen-n2" || len(m) != 1 {
		t.Fatalf("members: got %+v %v; want n2 alone", m, err)
	}
	bad := root.BadRecords()
	for _, kind := range []string{"nodes", "members", "joins"} {
		if bad[kind] == 0 {
			t.Errorf("BadRecords()[%q] = 0; want the forged record counted (all: %v)", kind, bad)
		}
	}
}

// A record that does not decode, under members/, nodes/, joins/ or
// partitions/p/, is skipped and counted: the detector still judges every
// other member (a dead one goes SUSPECT), admits a valid join request,
// and the planner still creates the other partitions.
func TestBadRecordsAreSkippedNotFatal(t *testing.T) {
	c := mustEtcd(t)
	ctx := ctxT(t)
	cfg := ring.Config{Replicas: 1, VNodes: ring.DefaultVNodes}
	if err := c.JoinRing(ctx, ring.Node{ID: "n1", Addr: "a:1"}, cfg); err != nil {
		t.Fatal(err)
	}
	leases := map[string]*Lease{}
	for _, id := range []string{"n1", "n3", "n4"} {
		l, err := c.Register(ctx, ring.Node{ID: id, Addr: "a:" + id[1:]}, "g-"+id, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close(ctx) })
		leases[id] = l
		if err := c.MarkActive(ctx, id, "g-"+id); err != nil {
			t.Fatal(err)
		}
	}
	join, _ := json.Marshal(joinRequest{Node: ring.Node{ID: "n4", Addr: "a:4"}, Replicas: cfg.Replicas, VNodes: cfg.VNodes})
	for key, val := range map[string]string{
		c.key("members", "zz"):          "{not json",
		c.key("nodes", "zz"):            `{"id":`,
		c.key("joins", "aa"):            "\x00\xff",
		c.key("joins", "n4"):            string(join),
		c.partitionKey(2):               `{"id":"two"}`,
		c.key("members", "bad/key/x"):   `{"id":"bad/key/x"}`,
		c.key("partitions", "p", "zzz"): `{"id":3}`,
	} {
		if _, err := c.etcd.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	dcfg := testDetectorConfig("leader")
	dcfg.Planner = PlannerConfig{Partitions: api.PartitionConfig{Count: 4, Replicas: 1}, Interval: 100 * time.Millisecond}
	runDetector(t, c, dcfg)
	leases["n3"].Close(ctx)
	eventually(t, "n3 SUSPECT or DOWN after its lease ended", func() bool {
		s := state(t, c, "n3")
		return s == api.StateSuspect || s == api.StateDown
	})
	eventually(t, "n4 admitted to the ring", func() bool {
		r, err := c.LoadRing(ctx)
		_, ok := r.Node("n4")
		return err == nil && ok
	})
	eventually(t, "partitions 0, 1 and 3 created around the bad record of 2", func() bool {
		parts, err := c.Partitions(ctx)
		_, p0 := parts[0]
		_, p1 := parts[1]
		_, p3 := parts[3]
		return err == nil && p0 && p1 && p3
	})
	if m, err := c.Members(ctx); err != nil || len(m) != 3 {
		t.Fatalf("members: got %v %v; want n1, n3 and n4", m, err)
	}
	bad := c.BadRecords()
	for _, kind := range []string{"nodes", "members", "joins", "partitions"} {
		if bad[kind] == 0 {
			t.Errorf("BadRecords()[%q] = 0; want the bad record counted (all: %v)", kind, bad)
		}
	}
}

// An admission that fails (here: a0 registered and asked to join with an
// empty address, which no ring accepts) does not hold up the join
// requests after it: n4 is admitted.
func TestOneFailedAdmissionDoesNotBlockTheOthers(t *testing.T) {
	c := mustEtcd(t)
	ctx := ctxT(t)
	cfg := ring.Config{Replicas: 1, VNodes: ring.DefaultVNodes}
	if err := c.JoinRing(ctx, ring.Node{ID: "n1", Addr: "a:1"}, cfg); err != nil {
		t.Fatal(err)
	}
	for _, n := range []ring.Node{{ID: "a0", Addr: ""}, {ID: "n4", Addr: "a:4"}} {
		l, err := c.Register(ctx, n, "g-"+n.ID, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close(ctx) })
		join, _ := json.Marshal(joinRequest{Node: n, Replicas: cfg.Replicas, VNodes: cfg.VNodes})
		if _, err := c.etcd.Put(ctx, c.key("joins", n.ID), string(join)); err != nil {
			t.Fatal(err)
		}
	}
	runDetector(t, c, testDetectorConfig("leader"))
	eventually(t, "n4 admitted to the ring after a0's admission failed", func() bool {
		r, err := c.LoadRing(ctx)
		_, ok := r.Node("n4")
		return err == nil && ok
	})
	if r, _ := c.LoadRing(ctx); r != nil {
		if _, ok := r.Node("a0"); ok {
			t.Fatal("a0 was admitted with an empty address")
		}
	}
}
