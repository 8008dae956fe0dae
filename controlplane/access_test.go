package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/ring"
)

// Every change to etcd's users and roles makes the tokens of every client
// out of date, and etcd refuses a lease renewal under an old token
// (ErrAuthOldRevision); the client then fetches a fresh token. A node's
// lease survives role changes at the pace of an operator's `stratum
// access` runs (and faster). Changes that come faster than a login takes
// starve it: that is why the planner does not grant partitions one by one
// (access.go).
func TestLeaseSurvivesAuthChanges(t *testing.T) {
	ctx := ctxT(t)
	root, dial := mustAccessEtcd(t)
	if err := root.GrantNode(ctx, "n1", "pw1"); err != nil {
		t.Fatal(err)
	}
	n1 := dial(NodeUser("n1"), "pw1")
	l, err := n1.Register(ctx, ring.Node{ID: "n1", Addr: "a:1"}, "g", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	// Change the node's role every 1.5 s for three TTLs, as an operator's
	// `stratum access` runs would (and faster). Each change voids the
	// node's token; fetching a new one costs a bcrypt check on both sides,
	// which the race detector makes slow, so changes much more frequent
	// than the time that takes would starve any client.
	for end := time.Now().Add(9 * time.Second); time.Now().Before(end); {
		key := root.key("scratch")
		if _, err := root.etcd.RoleGrantPermission(ctx, NodeUser("n1"), key, "", clientv3.PermissionType(clientv3.PermRead)); err != nil {
			t.Fatal(err)
		}
		if _, err := root.etcd.RoleRevokePermission(ctx, NodeUser("n1"), key, ""); err != nil {
			t.Fatal(err)
		}
		select {
		case <-l.Done():
			t.Fatal("the lease was lost while etcd's auth revision changed")
		case <-time.After(1500 * time.Millisecond):
		}
	}
	if nodes, err := root.Nodes(ctx); err != nil || nodes["n1"].Generation != "g" {
		t.Fatalf("n1's record after the auth changes: %+v %v", nodes, err)
	}
}

// The detector leader adds a node to the ring only on a join request from
// a live member whose liveness record and ring settings match: a request
// with other ring settings, one from an ID that never registered, and one
// naming another address than the node's record are left alone, and a
// node waiting on a request whose settings conflict with the ring gets
// ErrRingConflict instead of waiting forever.
func TestJoinRequestsAdmittedOnlyWhenTheyMatch(t *testing.T) {
	c := mustEtcd(t)
	ctx := ctxT(t)
	cfg := ring.Config{Replicas: 1, VNodes: ring.DefaultVNodes}
	if err := c.JoinRing(ctx, ring.Node{ID: "n1", Addr: "a:1"}, cfg); err != nil {
		t.Fatal(err)
	}
	for _, n := range []ring.Node{{ID: "n2", Addr: "a:2"}, {ID: "n3", Addr: "a:3"}, {ID: "n4", Addr: "a:4"}} {
		l, err := c.Register(ctx, n, "g-"+n.ID, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close(ctx)
	}
	put := func(id, addr string, replicas int) {
		v, _ := json.Marshal(joinRequest{Node: ring.Node{ID: id, Addr: addr}, Replicas: replicas, VNodes: cfg.VNodes})
		if _, err := c.etcd.Put(ctx, c.key("joins", id), string(v)); err != nil {
			t.Fatal(err)
		}
	}
	put("n2", "a:2", 1) // matches
	put("n3", "a:3", 2) // other replication factor
	put("n4", "a:9", 1) // not the address n4 registered
	put("n9", "a:9", 1) // never registered
	runDetector(t, c, testDetectorConfig("leader"))
	eventually(t, "n2 admitted", func() bool {
		r, err := c.LoadRing(ctx)
		_, ok := r.Node("n2")
		return err == nil && ok
	})
	time.Sleep(500 * time.Millisecond) // a dozen more ticks
	r, err := c.LoadRing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n3", "n4", "n9"} {
		if _, ok := r.Node(id); ok {
			t.Errorf("%s was added to the ring on a join request that does not match", id)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.requestJoin(wctx, ring.Node{ID: "n3", Addr: "a:3"}, ring.Config{Replicas: 2, VNodes: cfg.VNodes}); !errors.Is(err, ErrRingConflict) {
		t.Fatalf("waiting to join with replicas=2 on a replicas=1 ring: %v; want ErrRingConflict", err)
	}
}

// mustAccessEtcd starts an etcd with access control on (root's password
// "rootpw") and returns a client logged in as root and a dial function for
// other users; every client is closed when the test ends.
func mustAccessEtcd(t *testing.T) (root *Client, dial func(user, pw string) *Client) {
	t.Helper()
	first := mustEtcd(t)
	ctx := ctxT(t)
	if err := first.EnableAccess(ctx, "rootpw"); err != nil {
		t.Fatal(err)
	}
	dial = func(user, pw string) *Client {
		cfg := DefaultClientConfig(first.cfg.Endpoints...)
		cfg.Username, cfg.Password = user, pw
		c, err := Dial(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return dial(RootUser, "rootpw"), dial
}
