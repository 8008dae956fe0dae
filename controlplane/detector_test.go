package controlplane

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

func testDetectorConfig(name string) DetectorConfig {
	cfg := DefaultDetectorConfig(name)
	cfg.SuspectTimeout, cfg.DownTimeout, cfg.Grace, cfg.Tick, cfg.SessionTTL = 400*time.Millisecond, 1200*time.Millisecond, 200*time.Millisecond, 40*time.Millisecond, 1
	return cfg
}

// runDetector runs a detector until the returned stop is called.
func runDetector(t *testing.T, c *Client, cfg DetectorConfig) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.RunDetector(ctx, cfg) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func state(t *testing.T, c *Client, id string) api.MemberState {
	m, _, err := c.Member(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m.State
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true after 15s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDetectorConfigValidate(t *testing.T) {
	f := func(edit func(*DetectorConfig)) {
		t.Helper()
		cfg := DefaultDetectorConfig("x")
		edit(&cfg)
		if cfg.Validate() == nil {
			t.Fatalf("Validate(%+v) = nil; want an error", cfg)
		}
	}
	f(func(c *DetectorConfig) { c.Candidate = "" })
	f(func(c *DetectorConfig) { c.DownTimeout = c.SuspectTimeout })
	f(func(c *DetectorConfig) { c.Tick = 0 })
	if err := DefaultDetectorConfig("x").Validate(); err != nil {
		t.Fatal(err)
	}
}

// A node flaps three times, is damped, and a new leader keeps the damping.
func TestFlapDampingSurvivesLeaderChange(t *testing.T) {
	c := mustEtcd(t)
	self := ring.Node{ID: "f1", Addr: "h:1"}
	lease, err := c.Register(ctxT(t), self, "g1", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MarkActive(ctxT(t), "f1", "g1"); err != nil {
		t.Fatal(err)
	}
	stopA := runDetector(t, c, testDetectorConfig("A"))
	for flap := 1; flap <= 3; flap++ {
		lease.Close(ctxT(t)) // silence
		eventually(t, "SUSPECT", func() bool { return state(t, c, "f1") == api.StateSuspect })
		if lease, err = c.Reregister(ctxT(t), self, "g1", 2*time.Second); err != nil {
			t.Fatalf("flap %d: reregister: %v", flap, err)
		}
		eventually(t, "ACTIVE again", func() bool { return state(t, c, "f1") == api.StateActive })
	}
	m, _, _ := c.Member(ctxT(t), "f1")
	if len(m.SuspectEvents) != 3 {
		t.Fatalf("suspect events in etcd: %v; want 3", m.SuspectEvents)
	}
	stopA()
	lease.Close(ctxT(t)) // f1 goes silent for good
	// A new leader reads the damping from etcd: judged on the record alone,
	// a silence of 1.5x the suspect timeout is not enough, 2x is.
	cfg := testDetectorConfig("B")
	b := &detector{c: c, cfg: cfg, fence: clientv3.Compare(clientv3.CreateRevision("/stratum/no-such-key"), "=", 0)}
	if !b.damped(m) {
		t.Fatal("new leader does not see the damping recorded in etcd")
	}
	if err := b.judge(ctxT(t), m, false, cfg.SuspectTimeout*3/2); err != nil {
		t.Fatal(err)
	}
	if got := state(t, c, "f1"); got != api.StateActive {
		t.Fatalf("damped node after 1.5x suspect timeout: %s; want still ACTIVE", got)
	}
	if err := b.judge(ctxT(t), m, false, cfg.SuspectTimeout*2); err != nil {
		t.Fatal(err)
	}
	if got := state(t, c, "f1"); got != api.StateSuspect {
		t.Fatalf("damped node after 2x suspect timeout: %s; want SUSPECT", got)
	}
	// An undamped node is suspected at 1x.
	fresh := api.Member{ID: "f2", State: api.StateActive, Generation: "g"}
	l2, _ := c.Register(ctxT(t), ring.Node{ID: "f2", Addr: "h:2"}, "g", 2*time.Second)
	c.MarkActive(ctxT(t), "f2", "g")
	l2.Close(ctxT(t))
	if b.damped(fresh) {
		t.Fatal("a node with no suspect events is damped")
	}
	if err := b.judge(ctxT(t), fresh, false, cfg.SuspectTimeout); err != nil {
		t.Fatal(err)
	}
	if got := state(t, c, "f2"); got != api.StateSuspect {
		t.Fatalf("undamped node after 1x suspect timeout: %s; want SUSPECT", got)
	}
}

// A heartbeat brings SUSPECT back to ACTIVE, never DOWN back to anything.
func TestDownIsNotRevivedByTheOldGeneration(t *testing.T) {
	c := mustEtcd(t)
	self := ring.Node{ID: "d1", Addr: "h:1"}
	lease, _ := c.Register(ctxT(t), self, "g1", 2*time.Second)
	c.MarkActive(ctxT(t), "d1", "g1")
	runDetector(t, c, testDetectorConfig("A"))
	lease.Close(ctxT(t))
	eventually(t, "DOWN", func() bool { return state(t, c, "d1") == api.StateDown })
	if _, err := c.Reregister(ctxT(t), self, "g1", 2*time.Second); err == nil {
		t.Fatal("the DOWN generation re-registered; want ErrFenced")
	}
	if _, err := c.Register(ctxT(t), self, "g2", 2*time.Second); err != nil {
		t.Fatalf("a new generation over a DOWN member: %v", err)
	}
	if m, _, _ := c.Member(ctxT(t), "d1"); m.State != api.StateJoining || m.Generation != "g2" {
		t.Fatalf("after re-registration: %+v; want JOINING at g2", m)
	}
}

// A verdict is not written for a node that came back between the look and
// the write: the transition requires its lease record to be absent.
func TestVerdictNotWrittenForALiveNode(t *testing.T) {
	c := mustEtcd(t)
	l, _ := c.Register(ctxT(t), ring.Node{ID: "v1", Addr: "h:1"}, "g", 2*time.Second)
	defer l.Close(ctxT(t))
	c.MarkActive(ctxT(t), "v1", "g")
	d := &detector{c: c, cfg: testDetectorConfig("x"), fence: clientv3.Compare(clientv3.CreateRevision("/stratum/no-such-key"), "=", 0)}
	m, _, _ := c.Member(ctxT(t), "v1")
	if err := d.judge(ctxT(t), m, false, time.Hour); err != nil { // a stale "silent" reading
		t.Fatal(err)
	}
	if got := state(t, c, "v1"); got != api.StateActive {
		t.Fatalf("live node after a stale verdict: %s; want ACTIVE", got)
	}
}

// A deposed leader cannot write: its transitions are fenced by its
// election key.
func TestDeposedDetectorCannotWrite(t *testing.T) {
	c := mustEtcd(t)
	c.Register(ctxT(t), ring.Node{ID: "z1", Addr: "h:1"}, "g", 2*time.Second)
	c.MarkActive(ctxT(t), "z1", "g")
	d := &detector{c: c, cfg: testDetectorConfig("old"), fence: clientv3.Compare(clientv3.CreateRevision("/stratum/detector/gone"), "=", 12345)}
	m, _, _ := c.Member(ctxT(t), "z1")
	if err := d.transition(ctxT(t), m, api.StateDown); err != ErrNotLeader {
		t.Fatalf("transition by a deposed leader: %v; want ErrNotLeader", err)
	}
	if got := state(t, c, "z1"); got != api.StateActive {
		t.Fatalf("state after a deposed leader's write: %s; want ACTIVE", got)
	}
}

// The heartbeat cost to etcd: 200 nodes keep their leases alive; count the
// Raft entries etcd applies meanwhile. Keepalives are not Raft writes, so the
// count must not grow with the node count.
func TestHeartbeatCostDoesNotGrowWithNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for 6 seconds")
	}
	c := mustEtcd(t)
	for i := 0; i < 200; i++ {
		// A 6 s TTL renews every 2 s: three rounds in the window, and no
		// lease expires (which would be a write) on a loaded machine.
		l, err := c.Register(ctxT(t), ring.Node{ID: "sim" + itoa(i), Addr: "h:1"}, "g", 6*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close(context.Background()) })
	}
	ep := c.cfg.Endpoints[0]
	before, err := c.etcd.Status(ctxT(t), ep)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // three rounds of keepalives from 200 nodes
	after, _ := c.etcd.Status(ctxT(t), ep)
	entries := after.RaftIndex - before.RaftIndex
	t.Logf("200 nodes, 6 s of lease keepalives: %d Raft entries, store revision %d -> %d", entries, before.Header.Revision, after.Header.Revision)
	if after.Header.Revision != before.Header.Revision {
		t.Fatalf("heartbeats wrote to the store: revision %d -> %d", before.Header.Revision, after.Header.Revision)
	}
	if entries > 20 {
		t.Fatalf("%d Raft entries for 6 s of heartbeats from 200 nodes; want a handful at most, independent of the node count", entries)
	}
}

func itoa(i int) string {
	return string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}

// A draining node that restarts keeps draining under its new generation.
func TestRestartKeepsDrain(t *testing.T) {
	c := mustEtcd(t)
	self := ring.Node{ID: "r1", Addr: "h:1"}
	l, _ := c.Register(ctxT(t), self, "g1", 2*time.Second)
	c.MarkActive(ctxT(t), "r1", "g1")
	if err := c.Drain(ctxT(t), "r1"); err != nil {
		t.Fatal(err)
	}
	l.Close(ctxT(t))
	l2, err := c.Register(ctxT(t), self, "g2", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close(ctxT(t))
	c.MarkActive(ctxT(t), "r1", "g2")
	if m, _, _ := c.Member(ctxT(t), "r1"); m.State != api.StateDraining || m.Generation != "g2" || m.Drained {
		t.Fatalf("after a restart mid-drain: %+v; want DRAINING, g2, not drained", m)
	}
}
