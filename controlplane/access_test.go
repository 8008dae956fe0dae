package controlplane

import (
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
	root := mustEtcd(t)
	ctx := ctxT(t)
	if err := root.EnableAccess(ctx, "rootpw"); err != nil {
		t.Fatal(err)
	}
	dial := func(user, pw string) *Client {
		cfg := DefaultClientConfig(root.cfg.Endpoints...)
		cfg.Username, cfg.Password = user, pw
		c, err := Dial(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	root = dial(RootUser, "rootpw")
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
