package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/ring"
)

var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns a loopback port that was free a moment ago and that no
// other caller in this test binary has been given.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		handedOut.Lock()
		fresh := !handedOut.ports[port]
		handedOut.ports[port] = true
		handedOut.Unlock()
		if fresh {
			return port
		}
	}
}

// mustEtcd starts a one-member etcd on free ports and returns a client.
func mustEtcd(t *testing.T) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := DefaultMemberConfig(t.TempDir())
	cfg.BcryptCost = 4 // bcrypt.MinCost: logins are slow under the race detector
	cfg.ClientURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
	cfg.PeerURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
	m, err := StartMember(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	c, err := Dial(ctx, DefaultClientConfig(m.ClientURLs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestMemberConfigValidate(t *testing.T) {
	f := func(edit func(*MemberConfig), want string) {
		t.Helper()
		cfg := DefaultMemberConfig("/tmp/x")
		edit(&cfg)
		err := cfg.Validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Fatalf("Validate() = %v; want error containing %q", err, want)
		}
	}
	f(func(*MemberConfig) {}, "")
	f(func(c *MemberConfig) { c.Dir = "" }, "MemberConfig.Dir")
	f(func(c *MemberConfig) { c.Name = "" }, "MemberConfig.Name")
	f(func(c *MemberConfig) { c.ClusterState = "old" }, "MemberConfig.ClusterState")
	f(func(c *MemberConfig) { c.ClientURLs = []string{"127.0.0.1:2379"} }, "scheme://")
	f(func(c *MemberConfig) { c.PeerURLs = nil }, "MemberConfig.PeerURLs")
}

func TestClientConfigValidate(t *testing.T) {
	f := func(cfg ClientConfig, want string) {
		t.Helper()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate(%+v) = %v; want error containing %q", cfg, err, want)
		}
	}
	f(DefaultClientConfig(), "Endpoints")
	bad := DefaultClientConfig("http://x")
	bad.Prefix = "stratum"
	f(bad, "Prefix")
}

func TestRegisterIsExclusivePerGeneration(t *testing.T) {
	c := mustEtcd(t)
	self := ring.Node{ID: "n1", Addr: "127.0.0.1:1"}
	first, err := c.Register(ctxT(t), self, "gen-1", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A second process with the same ID waits, then fails while the first lives.
	short, cancel := context.WithTimeout(ctxT(t), 1500*time.Millisecond)
	defer cancel()
	if _, err := c.Register(short, self, "gen-2", 2*time.Second); !errors.Is(err, ErrNodeIDInUse) {
		t.Fatalf("second registration while the first is live: %v; want ErrNodeIDInUse", err)
	}
	nodes, err := c.Nodes(ctxT(t))
	if err != nil || nodes["n1"].Generation != "gen-1" {
		t.Fatalf("Nodes() = %+v, %v; want n1 at gen-1", nodes, err)
	}
	// Once the first releases its lease, the new generation gets in.
	if err := first.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after Close")
	}
	second, err := c.Register(ctxT(t), self, "gen-2", 2*time.Second)
	if err != nil {
		t.Fatalf("registration after release: %v", err)
	}
	defer second.Close(ctxT(t))
	nodes, _ = c.Nodes(ctxT(t))
	if nodes["n1"].Generation != "gen-2" {
		t.Fatalf("after takeover, n1 generation = %q; want gen-2", nodes["n1"].Generation)
	}
}

func TestRegistrationOutlivesTTLWhileKeptAlive(t *testing.T) {
	c := mustEtcd(t)
	l, err := c.Register(ctxT(t), ring.Node{ID: "n1", Addr: "a:1"}, "g", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctxT(t))
	deadline := time.Now().Add(3 * time.Second) // three TTLs
	for time.Now().Before(deadline) {
		nodes, err := c.Nodes(ctxT(t))
		if err != nil || nodes["n1"].Generation != "g" {
			t.Fatalf("record vanished while the lease was kept alive: %+v %v", nodes, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestJoinRingCreatesThenAdds(t *testing.T) {
	c := mustEtcd(t)
	if _, err := c.LoadRing(ctxT(t)); !errors.Is(err, ErrNoRing) {
		t.Fatalf("LoadRing on empty etcd: %v; want ErrNoRing", err)
	}
	cfg := ring.Config{Replicas: 3, VNodes: 64}
	for i := 1; i <= 3; i++ {
		if err := c.JoinRing(ctxT(t), ring.Node{ID: fmt.Sprintf("n%d", i), Addr: fmt.Sprintf("h:%d", i)}, cfg); err != nil {
			t.Fatal(err)
		}
	}
	r1, _ := c.LoadRing(ctxT(t))
	// Joining again unchanged is a no-op: the revision does not move.
	if err := c.JoinRing(ctxT(t), ring.Node{ID: "n2", Addr: "h:2"}, cfg); err != nil {
		t.Fatal(err)
	}
	r2, _ := c.LoadRing(ctxT(t))
	if r2.Revision() != r1.Revision() || r2.Len() != 3 {
		t.Fatalf("idempotent join moved the ring: %d -> %d, len %d", r1.Revision(), r2.Revision(), r2.Len())
	}
	// A new address is an update.
	if err := c.JoinRing(ctxT(t), ring.Node{ID: "n2", Addr: "h:22"}, cfg); err != nil {
		t.Fatal(err)
	}
	r3, _ := c.LoadRing(ctxT(t))
	if n, _ := r3.Node("n2"); n.Addr != "h:22" || r3.Revision() <= r2.Revision() {
		t.Fatalf("address update: n2=%+v rev %d; want h:22 and a newer revision", n, r3.Revision())
	}
	// A node configured for another replication factor is refused.
	err := c.JoinRing(ctxT(t), ring.Node{ID: "n4", Addr: "h:4"}, ring.Config{Replicas: 5, VNodes: 64})
	if !errors.Is(err, ErrRingConflict) {
		t.Fatalf("join with replicas=5: %v; want ErrRingConflict", err)
	}
}

func TestConcurrentJoinsAllLand(t *testing.T) {
	c := mustEtcd(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.JoinRing(ctxT(t), ring.Node{ID: fmt.Sprintf("n%d", i), Addr: "h:1"}, ring.Config{Replicas: 3, VNodes: 16}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	r, err := c.LoadRing(ctxT(t))
	if err != nil || r.Len() != 8 {
		t.Fatalf("after 8 concurrent joins: len %d err %v; want 8 (no lost update)", r.Len(), err)
	}
}

func TestRemoveFromRingFailsLoudly(t *testing.T) {
	c := mustEtcd(t)
	cfg := ring.Config{Replicas: 3, VNodes: 16}
	c.JoinRing(ctxT(t), ring.Node{ID: "n1", Addr: "h:1"}, cfg)
	c.JoinRing(ctxT(t), ring.Node{ID: "n2", Addr: "h:2"}, cfg)
	if err := c.RemoveFromRing(ctxT(t), "n1"); err != nil {
		t.Fatal(err)
	}
	r, _ := c.LoadRing(ctxT(t))
	if _, ok := r.Node("n1"); ok || r.Len() != 1 {
		t.Fatalf("after removing n1: len %d, n1 present %t", r.Len(), ok)
	}
	if err := c.RemoveFromRing(ctxT(t), "n1"); err == nil {
		t.Fatal("removing an absent node succeeded; want an error")
	}
}

func TestWatchRingDeliversEveryChangeInOrder(t *testing.T) {
	c := mustEtcd(t)
	cfg := ring.Config{Replicas: 3, VNodes: 16}
	c.JoinRing(ctxT(t), ring.Node{ID: "n1", Addr: "h:1"}, cfg)
	ctx, cancel := context.WithCancel(ctxT(t))
	got := make(chan *ring.Ring, 100)
	done := make(chan error)
	go func() { done <- c.WatchRing(ctx, func(r *ring.Ring) { got <- r }) }()
	first := <-got
	if first.Len() != 1 {
		t.Fatalf("first ring has %d nodes; want 1", first.Len())
	}
	for i := 2; i <= 4; i++ {
		c.JoinRing(ctxT(t), ring.Node{ID: fmt.Sprintf("n%d", i), Addr: "h:1"}, cfg)
	}
	last := first.Revision()
	for want := 2; want <= 4; want++ {
		select {
		case r := <-got:
			if r.Len() != want || r.Revision() <= last {
				t.Fatalf("ring %d: len %d rev %d (previous %d); want len %d, newer", want, r.Len(), r.Revision(), last, want)
			}
			last = r.Revision()
		case <-time.After(10 * time.Second):
			t.Fatalf("no ring with %d nodes delivered", want)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("WatchRing returned %v; want context.Canceled", err)
	}
}
