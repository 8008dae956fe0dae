package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/controlplane"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/ring"
)

// fastDetectorConfig is a failure detector with short timeouts for tests.
func fastDetectorConfig(name string) controlplane.DetectorConfig {
	cfg := controlplane.DefaultDetectorConfig(name)
	cfg.SuspectTimeout, cfg.DownTimeout, cfg.Grace, cfg.Tick = 500*time.Millisecond, 1500*time.Millisecond, 300*time.Millisecond, 50*time.Millisecond
	cfg.SessionTTL = 2
	return cfg
}

// runDetector runs a detector for the test's lifetime; the returned
// function stops it earlier.
func (c *Cluster) runDetector(t *testing.T, cfg controlplane.DetectorConfig) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.CP.RunDetector(ctx, cfg)
	}()
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

// fastDetector runs a failure detector with short timeouts for the test's
// lifetime.
func (c *Cluster) fastDetector(t *testing.T, name string) context.CancelFunc {
	return c.runDetector(t, fastDetectorConfig(name))
}

func (c *Cluster) state(t *testing.T, id string) api.MemberState {
	m, _, err := c.CP.Member(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m.State
}

func TestNodeGoesSuspectDownAndActiveAgain(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	c.fastDetector(t, "d1")
	for _, tn := range c.Nodes {
		Eventually(t, 5*time.Second, tn.ID+" ACTIVE", func() bool { return c.state(t, tn.ID) == api.StateActive })
	}
	c.StopNode(2)
	Eventually(t, 10*time.Second, "n3 SUSPECT", func() bool { return c.state(t, "n3") == api.StateSuspect })
	Eventually(t, 10*time.Second, "n3 DOWN", func() bool { return c.state(t, "n3") == api.StateDown })
	if c.state(t, "n1") != api.StateActive || c.state(t, "n2") != api.StateActive {
		t.Fatal("a healthy node left ACTIVE")
	}
	// The status documents agree with what happened.
	doc, err := c.Client(0).Cluster(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range doc.Nodes {
		wantState, wantLive := api.StateActive, true
		if n.ID == "n3" {
			wantState, wantLive = api.StateDown, false
		}
		if n.State != wantState || n.Live != wantLive || !n.InRing {
			t.Fatalf("/v1/cluster says %s is %s live=%t in_ring=%t; want %s live=%t in ring", n.ID, n.State, n.Live, n.InRing, wantState, wantLive)
		}
	}
	if st, _ := c.Client(1).Status(ctxT(t)); !st.Ready || st.ID != "n2" || st.ControlPlane != "ok" {
		t.Fatalf("/v1/status of n2: %+v", st)
	}
	// A write with a DOWN replica skips it and is flagged degraded.
	Eventually(t, 5*time.Second, "n1 sees n3 DOWN", func() bool {
		rec, err := c.Client(0).PutBytes(ctxT(t), []byte(time.Now().String()), api.SHA256, api.Quorum)
		return err == nil && rec.Degraded && strings.Contains(strings.Join(rec.Failed, ","), "n3") && !strings.Contains(strings.Join(rec.Acked, ","), "n3")
	})
	if _, err := c.Client(0).PutBytes(ctxT(t), []byte("all needs three"), api.SHA256, api.All); !errors.Is(err, api.ErrQuorumNotReached) {
		t.Fatalf("put at all with a DOWN replica: %v; want quorum_not_reached", err)
	}
	c.StartNode(2) // a restart: new generation, JOINING, then ACTIVE
	Eventually(t, 10*time.Second, "n3 ACTIVE after restart", func() bool { return c.state(t, "n3") == api.StateActive })
	m, _, _ := c.CP.Member(ctxT(t), "n3")
	if m.Generation != c.Nodes[2].Node.Generation() {
		t.Fatalf("member generation %s; want the restarted process's %s", m.Generation, c.Nodes[2].Node.Generation())
	}
}

func TestZombieGenerationIsFenced(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	zombie := c.Nodes[0].Node
	oldGen := zombie.Generation()
	// The detector declared n1 DOWN (say it was paused), and a new process
	// registered as n1: the old one is now a zombie.
	markDown(t, c, "n1")
	lease, err := c.CP.Register(ctxT(t), ring.Node{ID: "n1", Addr: c.Nodes[0].Addr}, "new-generation", 2*time.Second)
	if err != nil {
		t.Fatalf("registration of a new generation over a DOWN member: %v", err)
	}
	defer lease.Close(context.Background())

	Eventually(t, 5*time.Second, "zombie fences itself", zombie.Fenced)
	status, body := rawRequest(t, c.Nodes[0].Addr, "PUT", "/v1/objects/"+sha256Hex("zombie write"), []byte("zombie write"))
	if status != 503 || errorCode(body) != "not_ready" {
		t.Fatalf("write through the zombie: %d %s; want 503 not_ready", status, body)
	}
	status, body = rawRequest(t, c.Nodes[0].Addr, "GET", "/readyz", nil)
	if status != 503 || !strings.Contains(string(body), "fenced") {
		t.Fatalf("zombie /readyz: %d %s; want 503 fenced", status, body)
	}
	// Peers refuse its replica writes once their watched view has the new
	// generation (a peer whose view still lags by the watch's delivery time
	// would take them: the zombie fenced itself first here once, 4 ms
	// before n2's watch delivered the change).
	Eventually(t, 5*time.Second, "n2 sees n1's new generation", func() bool {
		m, ok := c.Nodes[1].Node.CachedMember("n1")
		return ok && m.Generation == "new-generation"
	})
	data := []byte("zombie replica write")
	oid, _ := api.Digest(api.SHA256, data)
	conn, err := net.Dial("tcp", c.Nodes[1].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	status, body = rawReplicaPut(t, conn, c.Nodes[1].Addr, zombie, oid, c.Nodes[1].Node.Ring().Revision(), data)
	if status != 409 || errorCode(body) != "stale_generation" {
		t.Fatalf("replica write from generation %s: %d %s; want 409 stale_generation", oldGen, status, body)
	}
	if c.Nodes[1].Node.Status().Objects != 0 {
		t.Fatal("the zombie's write was stored")
	}
	// And the zombie, as a replica, takes no writes either.
	zconn, err := net.Dial("tcp", c.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer zconn.Close()
	status, body = rawReplicaPut(t, zconn, c.Nodes[0].Addr, c.Nodes[1].Node, oid, c.Nodes[1].Node.Ring().Revision(), data)
	if status != 503 || errorCode(body) != "not_ready" || zombie.Status().Objects != 0 {
		t.Fatalf("replica write to the zombie: %d %s; want 503 not_ready and nothing stored", status, body)
	}
}

func markDown(t *testing.T, c *Cluster, id string) {
	t.Helper()
	m, _, err := c.CP.Member(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	m.State = api.StateDown
	val, _ := json.Marshal(m)
	if _, err := c.CP.Etcd().Put(ctxT(t), "/stratum/members/"+id, string(val)); err != nil {
		t.Fatal(err)
	}
}

func sha256Hex(s string) string {
	oid, _ := api.Digest(api.SHA256, []byte(s))
	return oid.String()
}

// A read whose replicas all fail gets 503, never 404.
func TestReadWithEveryReplicaFailingIs503(t *testing.T) {
	c := MustStartCluster(t, 1, func(cfg *datanode.Config) { cfg.PeerTimeout = 300 * time.Millisecond })
	for i := 0; i < 3; i++ {
		if err := c.CP.JoinRing(ctxT(t), ring.Node{ID: "hung" + string(rune('a'+i)), Addr: hungPeer(t)}, ring.DefaultConfig()); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitRingConverged()
	r := c.Nodes[0].Node.Ring()
	var oid api.OID
	for i := 0; ; i++ { // an object none of whose replicas is n1
		oid, _ = api.Digest(api.SHA256, []byte{byte(i), byte(i >> 8)})
		if !r.Owns("n1", []byte(oid.String())) {
			break
		}
	}
	for _, level := range []api.Consistency{api.One, api.Quorum, api.All} {
		if _, err := c.Client(0).GetBytes(ctxT(t), oid, level); !errors.Is(err, api.ErrQuorumNotReached) {
			t.Fatalf("get at %s with every replica hung: %v; want quorum_not_reached", level, err)
		}
	}
}

// Losing the whole control plane keeps reads and writes going on the cached
// ring; readiness and status say the control plane is unreachable.
func TestDataPathSurvivesControlPlaneLoss(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	before, err := c.Client(0).PutBytes(ctxT(t), []byte("before the outage"), api.SHA256, api.All)
	if err != nil {
		t.Fatal(err)
	}
	c.Member.Close()
	for i := range c.Nodes {
		Eventually(t, 20*time.Second, "node notices etcd is gone", func() bool { return !c.Nodes[i].Node.ControlPlaneOK() })
	}
	rec, err := c.Client(1).PutBytes(ctxT(t), []byte("during the outage"), api.SHA256, api.Quorum)
	if err != nil {
		t.Fatalf("put with no control plane: %v", err)
	}
	for i, oid := range []string{before.OID, rec.OID} {
		if _, err := c.Client(2).GetBytes(ctxT(t), api.MustParseOID(oid), api.Quorum); err != nil {
			t.Fatalf("get %d with no control plane: %v", i, err)
		}
	}
	status, body := rawRequest(t, c.Nodes[0].Addr, "GET", "/readyz", nil)
	if status != 200 || !strings.Contains(string(body), `"unreachable"`) {
		t.Fatalf("/readyz with no control plane: %d %s; want 200 saying unreachable", status, body)
	}
	doc, err := c.Client(0).Cluster(ctxT(t))
	if err != nil || doc.ControlPlane != "unreachable" || len(doc.Nodes) != 3 {
		t.Fatalf("cluster status with no control plane: %+v %v", doc, err)
	}
}

// A read whose first-asked replica hangs is answered by a hedge to the next
// replica, long before the hung call's own deadline.
func TestHedgedReadDoesNotWaitForAHungReplica(t *testing.T) {
	c := MustStartCluster(t, 2, func(cfg *datanode.Config) { cfg.PeerTimeout = 10 * time.Minute })
	if err := c.CP.JoinRing(ctxT(t), ring.Node{ID: "hung", Addr: hungPeer(t)}, ring.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	c.WaitRingConverged()
	r := c.Nodes[0].Node.Ring()
	var oid api.OID
	var data []byte
	for i := 0; ; i++ { // an object whose first peer after n1, in ring order, is the hung one
		data = []byte{byte(i), byte(i >> 8), 'h'}
		oid, _ = api.Digest(api.SHA256, data)
		var peers []string
		for _, n := range r.Replicas([]byte(oid.String())) {
			if n.ID != "n1" {
				peers = append(peers, n.ID)
			}
		}
		if peers[0] == "hung" {
			break
		}
	}
	if _, err := c.Client(1).PutBytes(ctxT(t), data, api.SHA256, api.Quorum); err != nil {
		t.Fatal(err)
	}
	// The client gives up after 20 s; the hung replica would hold an
	// unhedged read for 10 minutes.
	cl, err := client.New(client.Config{Endpoint: c.URL(0), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cl.GetBytes(ctxT(t), oid, api.Quorum)
	if err != nil || string(got) != string(data) {
		t.Fatalf("quorum read with the first-asked peer hung: %q %v", got, err)
	}
}

// A read that finds a replica without the object sends it the verified copy.
func TestReadRepair(t *testing.T) {
	// No retries: the write to the stopped node fails once, for good; and
	// neither hinted handoff nor anti-entropy (with its recovery round after
	// a restart) may repair it first.
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.PeerRetries, cfg.HintInterval, cfg.AntiEntropyInterval = 0, time.Hour, 0
	})
	n3 := c.Nodes[2].Addr
	c.StopNode(2)
	rec, err := c.Client(0).PutBytes(ctxT(t), []byte("repair me"), api.SHA256, api.Quorum)
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "the write to n3 has failed", func() bool {
		return metric(t, c, 0, `stratum_replica_call_seconds_count\{outcome="transport",peer="`+regexp.QuoteMeta(n3)+`"\}`) >= 1
	})
	c.StartNode(2)
	c.WaitRingConverged()
	if got := c.Nodes[2].Node.Status().Objects; got != 0 {
		t.Fatalf("n3 holds %d objects before the read; want 0", got)
	}
	if _, err := c.Client(0).GetBytes(ctxT(t), api.MustParseOID(rec.OID), api.All); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "n3 repaired by the read", func() bool { return c.Nodes[2].Node.Status().Objects == 1 })
	if got, err := c.Client(2).GetBytes(ctxT(t), api.MustParseOID(rec.OID), api.One); err != nil || string(got) != "repair me" {
		t.Fatalf("n3's repaired copy: %q %v", got, err)
	}
}

// Damaged copies are never served, and the scrubber quarantines and
// replaces every one of them from a verified replica.
func TestScrubRepairsDamagedCopies(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.ScrubInterval = 300 * time.Millisecond
		cfg.ScrubRate = 1000
	})
	var oids []api.OID
	var blobs [][]byte
	for i := 0; i < 3; i++ {
		data := randomBytes(int64(500+i), 1<<20+100*i+1) // above 1 MiB: files on disk
		rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA256, api.All)
		if err != nil {
			t.Fatal(err)
		}
		oids, blobs = append(oids, api.MustParseOID(rec.OID)), append(blobs, data)
	}
	for _, oid := range oids { // flip a few bytes of n3's copies
		path := filepath.Join(c.Nodes[2].Dir, "objects", oid.String()[:2], oid.String())
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("rot"), 4096)
		f.Close()
	}
	for i, oid := range oids { // reads through the damaged node still get the true bytes
		got, err := c.Client(2).GetBytes(ctxT(t), oid, api.One)
		if err != nil || !bytes.Equal(got, blobs[i]) {
			t.Fatalf("read of a damaged object via n3: %v", err)
		}
	}
	Eventually(t, 20*time.Second, "all three copies repaired", func() bool {
		return metric(t, c, 2, "stratum_scrub_repaired_total") == 3
	})
	if q, _ := os.ReadDir(filepath.Join(c.Nodes[2].Dir, "quarantine")); len(q) != 3 {
		t.Fatalf("quarantine holds %d files; want the 3 damaged copies", len(q))
	}
	Eventually(t, 10*time.Second, "the pass is reported in /v1/status", func() bool { return status(t, c, 2).LastScrub != nil })
	c.StopNode(0)
	c.StopNode(1)
	for i, oid := range oids {
		got, err := c.Client(2).GetBytes(ctxT(t), oid, api.One)
		if err != nil || !bytes.Equal(got, blobs[i]) {
			t.Fatalf("n3 alone, repaired copy %d: %v", i, err)
		}
	}
}
