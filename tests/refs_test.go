package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/controlplane"
	"github.com/stratum-store/stratum/datanode"
)

// refsCluster starts n data nodes and a failure detector whose planner
// runs fast, and waits until every partition has a serving primary.
func refsCluster(t *testing.T, n, partitions int, tune func(*datanode.Config)) *Cluster {
	return refsClusterWith(t, n, partitions, tune, nil)
}

// refsClusterWith is refsCluster with a step (before) that runs once etcd
// is up, before any data node starts.
func refsClusterWith(t *testing.T, n, partitions int, tune func(*datanode.Config), before func(*Cluster)) *Cluster {
	t.Helper()
	c := mustStartClusterWith(t, n, func(cfg *datanode.Config) {
		cfg.RefCheckInterval = 200 * time.Millisecond
		if tune != nil {
			tune(cfg)
		}
	}, before)
	c.planner(t, "planner", partitions, 3)
	c.waitPartitionsServing(t, partitions)
	return c
}

// planner runs a detector with short timeouts and a fast partition planner.
func (c *Cluster) planner(t *testing.T, name string, partitions, replicas int) context.CancelFunc {
	cfg := fastDetectorConfig(name)
	cfg.Planner = controlplane.PlannerConfig{Partitions: api.PartitionConfig{Count: partitions, Replicas: replicas},
		Interval: 200 * time.Millisecond, CreateDelay: time.Second, PromoteWait: 3 * time.Second}
	return c.runDetector(t, cfg)
}

// waitPartitionsServing waits until each of the count partitions is served
// by the node its record names primary.
func (c *Cluster) waitPartitionsServing(t *testing.T, count int) {
	t.Helper()
	Eventually(t, 30*time.Second, fmt.Sprintf("all %d partitions served", count), func() bool {
		serving := 0
		for i, tn := range c.Nodes {
			if tn.Node == nil {
				continue
			}
			rep, err := c.Client(i).Partitions(context.Background())
			if err != nil {
				return false
			}
			for _, p := range rep.Partitions {
				if p.Serving {
					serving++
				}
			}
		}
		return serving == count
	})
}

func oidN(i int) string { return fmt.Sprintf("%040x", i+1) }

func TestRefTransactionsBasics(t *testing.T) {
	c := refsCluster(t, 3, 16, nil)
	ctx := ctxT(t)
	cl := c.Client(0)
	repo := "org/project.git"
	upd := func(name, old, new string) api.RefUpdate { return api.RefUpdate{Name: name, Old: old, New: new} }

	// Create two refs in one transaction through a node that may not be
	// the primary (it forwards).
	res, err := cl.RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{
		upd("refs/heads/main", api.ZeroOID, oidN(1)), upd("refs/tags/v1", api.ZeroOID, oidN(2))}}, false)
	if err != nil {
		t.Fatalf("create refs: %v", err)
	}
	if len(res.Refs) != 2 || res.Refs[0].OID != oidN(1) {
		t.Fatalf("txn result %+v; want the two new values", res)
	}
	for i := range c.Nodes {
		got, err := c.Client(i).GetRef(ctx, repo, "refs/heads/main")
		if err != nil || got != oidN(1) {
			t.Fatalf("GetRef via n%d = %q, %v; want %s", i+1, got, err, oidN(1))
		}
	}
	// A multi-ref transaction with one stale old value changes nothing.
	_, err = cl.RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{
		upd("refs/heads/main", oidN(1), oidN(3)), upd("refs/tags/v1", oidN(9), oidN(4))}}, false)
	var ce *client.ConflictError
	if !errors.As(err, &ce) || len(ce.Refs) != 1 || ce.Refs[0].Name != "refs/tags/v1" || ce.Refs[0].OID != oidN(2) {
		t.Fatalf("stale multi-ref txn: err %v; want a conflict naming refs/tags/v1 at %s", err, oidN(2))
	}
	if got, _ := cl.GetRef(ctx, repo, "refs/heads/main"); got != oidN(1) {
		t.Fatalf("after a refused txn main is %s; want unchanged %s", got, oidN(1))
	}
	// "Must not exist" on an existing ref conflicts; delete works.
	if _, err := cl.RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{upd("refs/heads/main", api.ZeroOID, oidN(5))}}, false); !errors.Is(err, api.ErrRefConflict) {
		t.Fatalf("create over an existing ref: %v; want ref_conflict", err)
	}
	if _, err := cl.RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{upd("refs/tags/v1", oidN(2), api.ZeroOID)}}, false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := cl.GetRef(ctx, repo, "refs/tags/v1"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("deleted ref read: %v; want not_found", err)
	}
	list, err := c.Client(2).ListRefs(ctx, repo, "refs/", "", 0)
	if err != nil || len(list.Refs) != 1 || list.Refs[0].Name != "refs/heads/main" {
		t.Fatalf("list = %+v, %v; want only refs/heads/main", list, err)
	}
	// Status: /v1/cluster and the status page summarise the partitions.
	doc, err := c.Client(1).Cluster(ctx)
	if err != nil || doc.Partitions == nil || doc.Partitions.Assigned != 16 || doc.Partitions.UnderReplicated != 0 {
		t.Fatalf("cluster doc partitions %+v, %v; want 16 assigned, none under-replicated", doc.Partitions, err)
	}
	sum := 0
	for _, n := range doc.Partitions.Primaries {
		sum += n
	}
	if sum != 16 || len(doc.Partitions.Primaries) != 3 {
		t.Fatalf("primaries %v; want 16 spread over 3 nodes", doc.Partitions.Primaries)
	}
	resp, err := http.Get(c.URL(1) + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "16 of 16 assigned") {
		t.Fatalf("status page lacks the partition summary:\n%s", page)
	}
}

func TestRefTransactionRequiresObjects(t *testing.T) {
	c := refsCluster(t, 3, 8, nil)
	ctx := ctxT(t)
	cl := c.Client(1)
	data := []byte("a commit, more or less")
	rec, err := cl.PutBytes(ctx, data, api.SHA1, api.Quorum)
	if err != nil {
		t.Fatal(err)
	}
	missing := oidN(77)
	_, err = cl.RefTxn(ctx, "r", api.RefTxn{Updates: []api.RefUpdate{{Name: "refs/heads/main", Old: api.ZeroOID, New: missing}}}, true)
	if !errors.Is(err, api.ErrMissingObject) {
		t.Fatalf("txn to a missing object: %v; want missing_object (422)", err)
	}
	if _, err := cl.GetRef(ctx, "r", "refs/heads/main"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("the refused txn created the ref: %v", err)
	}
	if _, err := cl.RefTxn(ctx, "r", api.RefTxn{Updates: []api.RefUpdate{{Name: "refs/heads/main", Old: api.ZeroOID, New: rec.OID}}}, true); err != nil {
		t.Fatalf("txn to a stored object: %v", err)
	}
}

// 16 clients race a compare-and-swap on one ref from the same old value,
// round after round: exactly one wins each round.
func TestRefCASRaceHasOneWinner(t *testing.T) {
	c := refsCluster(t, 3, 8, nil)
	ctx := ctxT(t)
	repo, ref := "race", "refs/heads/main"
	cur := oidN(0)
	if _, err := c.Client(0).RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: api.ZeroOID, New: cur}}}, false); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 10; round++ {
		var wg sync.WaitGroup
		wins := make(chan string, 16)
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := oidN(round*100 + w)
				_, err := c.Client(w%3).RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: cur, New: next}}}, false)
				switch {
				case err == nil:
					wins <- next
				case !errors.Is(err, api.ErrRefConflict):
					t.Errorf("round %d client %d: %v", round, w, err)
				}
			}()
		}
		wg.Wait()
		close(wins)
		var won []string
		for w := range wins {
			won = append(won, w)
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %d winners %v; want exactly 1", round, len(won), won)
		}
		got, err := c.Client(2).GetRef(ctx, repo, ref)
		if err != nil || got != won[0] {
			t.Fatalf("round %d: ref is %s (%v); want the winner %s", round, got, err, won[0])
		}
		cur = won[0]
	}
}

// A member that lost its disk is not in sync, whatever the record says. Two
// nodes, partitions of two: n2's data directory is wiped while the record
// still lists it in sync; when n1 leaves, n2 is promoted, and it must
// refuse to serve (503) rather than answer from its empty store (404: an
// acknowledged ref silently lost).
func TestWipedMemberIsNotInSync(t *testing.T) {
	c := MustStartCluster(t, 2, func(cfg *datanode.Config) {
		cfg.RefCheckInterval = 200 * time.Millisecond
		cfg.Ring.Replicas = 2
		cfg.RefRetryWindow = 200 * time.Millisecond
	})
	stopPlanner := c.planner(t, "planner", 4, 2)
	c.waitPartitionsServing(t, 4)
	ctx := ctxT(t)
	repos := []string{"w/a", "w/b", "w/c", "w/d", "w/e", "w/f"}
	for i, repo := range repos {
		if _, err := c.Client(0).RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: "refs/heads/main", Old: api.ZeroOID, New: oidN(i)}}}, false); err != nil {
			t.Fatal(err)
		}
	}
	// With the planner stopped nothing is promoted while n2 is away. The
	// partitions n1 leads keep n2 in in_sync across n2's wipe (no
	// transaction runs to show otherwise); those n2 leads are reinstalled
	// from n1 by n2's own takeover when it restarts.
	stopPlanner()
	before, err := c.CP.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.StopNode(1)
	if err := os.RemoveAll(filepath.Join(c.Nodes[1].Dir, "refs")); err != nil {
		t.Fatal(err)
	}
	c.StartNode(1)
	c.waitPartitionsServing(t, 4)
	c.planner(t, "planner-2", 4, 2)
	c.StopNode(0)
	Eventually(t, 30*time.Second, "n2 named primary of every partition", func() bool {
		parts, err := c.CP.Partitions(ctx)
		if err != nil {
			return false
		}
		for _, p := range parts {
			if p.Primary != "n2" {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second) // several takeover attempts
	refused := 0
	for i, repo := range repos {
		resp, err := http.Get(c.URL(1) + api.PathRepos + repo + "/refs/heads/main")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ledByN1 := before[api.PartitionOf(repo, 4)].Primary == "n1"
		switch {
		case ledByN1 && resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "not_primary"):
			refused++
		case !ledByN1 && resp.StatusCode == http.StatusOK && strings.Contains(string(body), oidN(i)):
		default:
			t.Fatalf("%s (partition led by n1 before: %v) read from n2: %d %s; want 503 not_primary if n1 led it (n2's copy is gone), else the value reinstalled from n1",
				repo, ledByN1, resp.StatusCode, body)
		}
	}
	if refused == 0 {
		t.Fatal("no repository was in a partition n1 led: the test proved nothing; change the repository names")
	}
}

// A member that stops answering in the middle of a partition's life is
// dropped from in_sync by the next transaction, which is still acknowledged;
// when it returns the primary catches it up and takes it back.
func TestFailedReplicaLeavesAndRejoinsInSync(t *testing.T) {
	c := refsCluster(t, 3, 8, nil)
	ctx := ctxT(t)
	repo, ref := "drop/repo", "refs/heads/main"
	rec, _ := c.CP.Partitions(ctx)
	cfg, _, _ := c.CP.PartitionConfig(ctx)
	p := rec[api.PartitionOf(repo, cfg.Count)]
	var member string
	for _, id := range p.InSync {
		if id != p.Primary {
			member = id
			break
		}
	}
	idx := map[string]int{"n1": 0, "n2": 1, "n3": 2}[member]
	entry := map[string]int{"n1": 0, "n2": 1, "n3": 2}[p.Primary]
	if _, err := c.Client(entry).RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: api.ZeroOID, New: oidN(1)}}}, false); err != nil {
		t.Fatal(err)
	}
	c.StopNode(idx)
	if _, err := c.Client(entry).RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: oidN(1), New: oidN(2)}}}, false); err != nil {
		t.Fatalf("transaction with an in-sync member stopped: %v; want it acknowledged after dropping the member", err)
	}
	now, _ := c.CP.Partitions(ctx)
	if q := now[p.ID]; q.IsInSync(member) || q.Epoch <= p.Epoch {
		t.Fatalf("after the failed apply the record is %+v; want %s out of in_sync at a newer epoch", q, member)
	}
	c.StartNode(idx)
	Eventually(t, 30*time.Second, member+" caught up and back in sync", func() bool {
		parts, err := c.CP.Partitions(ctx)
		return err == nil && parts[p.ID].IsInSync(member)
	})
	rep, err := c.Client(idx).Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range rep.Partitions {
		if ps.ID == p.ID && ps.Version.Seq < 2 {
			t.Fatalf("%s rejoined in_sync at version %+v; want both transactions", member, ps.Version)
		}
	}
	if got, err := c.Client(idx).GetRef(ctx, repo, ref); err != nil || got != oidN(2) {
		t.Fatalf("ref after the rejoin: %s, %v; want %s", got, err, oidN(2))
	}
}
