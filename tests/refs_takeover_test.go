package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/ring"
)

// heldControl is a node's real control plane with two faults a test can
// switch: it holds back the node's partition watch (a watch that lags, as
// a slow etcd watch or a congested link makes it) and its re-registrations.
// It remembers the node's lease, so the test can revoke it as etcd does
// when the node is cut off past its TTL, and it counts the node's partition
// writes that etcd refused.
type heldControl struct {
	datanode.ControlPlane
	mu          sync.Mutex
	held        bool
	stash       map[int]api.Partition
	publish     func(map[int]api.Partition)
	membersHeld bool          // member watch deliveries are dropped while set
	rereg       chan struct{} // closed: re-registrations may proceed
	lease       datanode.Lease
	refused     int // UpdatePartition calls that failed
	registers   int // successful Register and Reregister calls
}

func newHeldControl(cp datanode.ControlPlane) *heldControl {
	open := make(chan struct{})
	close(open)
	return &heldControl{ControlPlane: cp, rereg: open}
}

func (h *heldControl) WatchPartitions(ctx context.Context, publish func(map[int]api.Partition)) error {
	return h.ControlPlane.WatchPartitions(ctx, func(m map[int]api.Partition) {
		h.mu.Lock()
		if h.held {
			h.stash, h.publish = m, publish
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		publish(m)
	})
}

// WatchMembers drops deliveries while membersHeld: the node keeps the
// member view it had (the next delivery after that is the full map).
func (h *heldControl) WatchMembers(ctx context.Context, publish func(map[string]api.Member)) error {
	return h.ControlPlane.WatchMembers(ctx, func(m map[string]api.Member) {
		h.mu.Lock()
		held := h.membersHeld
		h.mu.Unlock()
		if !held {
			publish(m)
		}
	})
}

func (h *heldControl) holdMembers() {
	h.mu.Lock()
	h.membersHeld = true
	h.mu.Unlock()
}

// holdWatch stops delivering partition records; releaseWatch delivers the
// newest one held back and resumes.
func (h *heldControl) holdWatch() {
	h.mu.Lock()
	h.held = true
	h.mu.Unlock()
}

func (h *heldControl) releaseWatch() {
	h.mu.Lock()
	h.held = false
	m, publish := h.stash, h.publish
	h.stash = nil
	h.mu.Unlock()
	if m != nil {
		publish(m)
	}
}

func (h *heldControl) Register(ctx context.Context, self ring.Node, gen string, ttl time.Duration) (datanode.Lease, error) {
	l, err := h.ControlPlane.Register(ctx, self, gen, ttl)
	h.noteLease(l, err)
	return l, err
}

func (h *heldControl) Reregister(ctx context.Context, self ring.Node, gen string, ttl time.Duration) (datanode.Lease, error) {
	h.mu.Lock()
	gate := h.rereg
	h.mu.Unlock()
	select {
	case <-gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l, err := h.ControlPlane.Reregister(ctx, self, gen, ttl)
	h.noteLease(l, err)
	return l, err
}

func (h *heldControl) noteLease(l datanode.Lease, err error) {
	if err != nil {
		return
	}
	h.mu.Lock()
	h.lease = l
	h.registers++
	h.mu.Unlock()
}

// holdReregister makes re-registrations wait until the returned func runs.
func (h *heldControl) holdReregister() (release func()) {
	gate := make(chan struct{})
	h.mu.Lock()
	h.rereg = gate
	h.mu.Unlock()
	return sync.OnceFunc(func() { close(gate) })
}

// revokeLease ends the node's registration in etcd (its node record goes),
// as an expiry does; the node sees its lease lost and re-registers.
func (h *heldControl) revokeLease(ctx context.Context) error {
	h.mu.Lock()
	l := h.lease
	h.mu.Unlock()
	return l.Close(ctx)
}

func (h *heldControl) UpdatePartition(ctx context.Context, epoch int64, next api.Partition) (int64, error) {
	e, err := h.ControlPlane.UpdatePartition(ctx, epoch, next)
	if err != nil {
		h.mu.Lock()
		h.refused++
		h.mu.Unlock()
	}
	return e, err
}

func (h *heldControl) counts() (refused, registers int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refused, h.registers
}

// startHeldCluster starts three in-process nodes on held control planes and
// writes one partition (the planner does not run in process) with n1
// primary and all three in sync; it returns when n1 serves it.
func startHeldCluster(t *testing.T) (*Cluster, map[string]*heldControl) {
	t.Helper()
	var mu sync.Mutex
	held := map[string]*heldControl{}
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		h := newHeldControl(cfg.Control)
		cfg.Control = h
		cfg.RefCheckInterval = 200 * time.Millisecond
		mu.Lock()
		held[cfg.ID] = h
		mu.Unlock()
	})
	ctx := ctxT(t)
	if _, err := c.CP.EnsurePartitionConfig(ctx, api.PartitionConfig{Count: 1, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	all := []string{"n1", "n2", "n3"}
	if _, err := c.CP.UpdatePartition(ctx, 0, api.Partition{ID: 0, Primary: "n1", Replicas: all, InSync: all}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, "n1 serves partition 0", func() bool { return reportsServing(c.URL(0), 0) })
	return c, held
}

// reportsServing asks the node at url whether it serves partition id.
func reportsServing(url string, id int) bool {
	cl, _ := client.New(client.Config{Endpoint: url, Timeout: 2 * time.Second})
	rep, err := cl.Partitions(context.Background())
	if err != nil {
		return false
	}
	for _, p := range rep.Partitions {
		if p.ID == id {
			return p.Serving
		}
	}
	return false
}

// TestRefTakeoverConfirmsTheRecord: a primary cut from etcd past its lease
// is promoted away; it re-registers before its watch shows the promotion
// and takes its partition over again. It must not serve from the record it
// has cached: its reads are not fenced by the new primary (which never
// contacts it), so it would answer with a value the new primary has
// already overwritten (issue 15.5).
func TestRefTakeoverConfirmsTheRecord(t *testing.T) {
	c, held := startHeldCluster(t)
	ctx := ctxT(t)
	repo, ref := "takeover/repo", "refs/heads/main"
	v1, v2 := strings.Repeat("1", 40), strings.Repeat("2", 40)
	if _, err := c.Client(0).RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: api.ZeroOID, New: v1}}}, false); err != nil {
		t.Fatal(err)
	}
	n1, n2 := held["n1"], held["n2"]
	// The watch lags on n1 (the old primary) and on n2 (the one promoted):
	// the promotion is in flight, written but not yet taken over.
	n1.holdWatch()
	n2.holdWatch()
	release := n1.holdReregister()
	defer release()
	if err := n1.revokeLease(ctx); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "n1 notices its lease is gone", func() bool { return !c.Nodes[0].Node.ControlPlaneOK() })
	parts, err := c.CP.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := parts[0]
	promoted := old
	promoted.Primary, promoted.InSync = "n2", []string{"n2", "n3"}
	promoted.PruneStores()
	if _, err := c.CP.UpdatePartition(ctx, old.Epoch, promoted); err != nil {
		t.Fatalf("promote n2: %v", err)
	}
	refusedBefore, registersBefore := n1.counts()
	release() // n1 re-registers quickly and takes partition 0 over again
	Eventually(t, 20*time.Second, "n1 re-registered and tried to take over", func() bool {
		refused, registers := n1.counts()
		return registers > registersBefore && (refused > refusedBefore || reportsServing(c.URL(0), 0))
	})
	if reportsServing(c.URL(0), 0) {
		t.Errorf("n1 serves partition 0 at epoch %d after n2 was promoted; want it to refuse", old.Epoch)
	}
	n2.releaseWatch()
	Eventually(t, 30*time.Second, "n2 acknowledges v1 -> v2", func() bool {
		_, err := c.Client(1).RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: v1, New: v2}}}, false)
		return err == nil
	})
	status, body, err := rawRef(ctx, http.MethodGet, c.Nodes[0].Addr, api.PathRepos+repo+"/"+ref, "")
	if err != nil {
		t.Fatal(err)
	}
	if status == http.StatusOK {
		t.Fatalf("n1 answered a read itself after n2 acknowledged %s: %d %s; want 503 not_primary (a stale read)", v2, status, strings.TrimSpace(body))
	}
	t.Logf("n1 refused the read: %d %s", status, strings.TrimSpace(body))
	n1.releaseWatch()
	// Once its watch catches up, n1 forwards to n2 and the read is current.
	Eventually(t, 10*time.Second, "a read through n1 returns v2", func() bool {
		got, err := c.Client(0).GetRef(ctx, repo, ref)
		return err == nil && got == v2
	})
}

// TestRefRestartFencesApplyInFlight: a primary sent an apply and was
// restarted gracefully before the message arrived (a slow link); the
// replica's view of the members lags, so the old process's generation still
// passes. After the new process has taken the partition over, the delayed
// apply must be refused: taken at the version the new process is about to
// reuse, it would leave the replica with other refs at the same version,
// still counted in sync, and a later failover would lose an acknowledged
// update (issue 15.6).
func TestRefRestartFencesApplyInFlight(t *testing.T) {
	c, held := startHeldCluster(t)
	ctx := ctxT(t)
	repo, ref := "restart/repo", "refs/heads/main"
	v1, v2, vx := strings.Repeat("1", 40), strings.Repeat("2", 40), strings.Repeat("d", 40)
	if _, err := c.Client(0).RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: api.ZeroOID, New: v1}}}, false); err != nil {
		t.Fatal(err)
	}
	parts, err := c.CP.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Client(0).Partitions(ctx)
	if err != nil || len(rep.Partitions) != 1 {
		t.Fatalf("n1 /v1/partitions: %+v %v", rep, err)
	}
	// The message the old process sent and the link delayed.
	delayed, _ := json.Marshal(api.RefApplyRequest{Partition: 0, Epoch: parts[0].Epoch, Seq: rep.Partitions[0].Version.Seq + 1,
		Changes: []api.RefChange{{Repo: repo, Name: ref, OID: vx}}})
	oldGen := c.Nodes[0].Node.Generation()
	held["n2"].holdMembers()
	c.StopNode(0)
	c.StartNode(0)
	Eventually(t, 30*time.Second, "the restarted n1 serves partition 0", func() bool { return reportsServing(c.URL(0), 0) })

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.URL(1)+api.PathRefApply, bytes.NewReader(delayed))
	req.Header.Set(api.HeaderNode, "n1")
	req.Header.Set(api.HeaderGeneration, oldGen)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("n2 took the old process's delayed apply after the restarted primary took over: %d; want 409 stale_epoch", resp.StatusCode)
	}
	if _, err := c.Client(0).RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: v1, New: v2}}}, false); err != nil {
		t.Fatalf("v1 -> v2 through the restarted primary: %v", err)
	}
	// Fail over, as the planner would, to an in-sync member (n2 if it is
	// one): it must hold the acknowledged v2.
	c.StopNode(0)
	cur, err := c.CP.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	promoted := cur[0]
	promoted.InSync = nil
	for _, m := range cur[0].InSync {
		if m != "n1" {
			promoted.InSync = append(promoted.InSync, m)
		}
	}
	promoted.Primary = promoted.InSync[0]
	promoted.PruneStores()
	if _, err := c.CP.UpdatePartition(ctx, cur[0].Epoch, promoted); err != nil {
		t.Fatalf("promote %s: %v", promoted.Primary, err)
	}
	i := map[string]int{"n2": 1, "n3": 2}[promoted.Primary]
	Eventually(t, 30*time.Second, promoted.Primary+" serves partition 0", func() bool { return reportsServing(c.URL(i), 0) })
	if got, err := c.Client(i).GetRef(ctx, repo, ref); err != nil || got != v2 {
		t.Fatalf("after failing over to %s the ref is %s (%v); want the acknowledged %s", promoted.Primary, got, err, v2)
	}
}
