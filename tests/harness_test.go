package tests

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/cli"
	"github.com/stratum-store/stratum/controlplane"
	"github.com/stratum-store/stratum/datanode"
)

// Cluster is an embedded etcd plus data nodes, all in this process.
type Cluster struct {
	t      testing.TB
	dir    string
	Member *controlplane.Member
	CP     *controlplane.Client
	Nodes  []*TestNode
	// Tune adjusts each node's configuration before it starts.
	Tune func(*datanode.Config)
	// Token, when set, is sent by every Client (nodes with Auth on).
	Token string
}

// TestNode is one data node of a Cluster; Node is nil while it is stopped.
type TestNode struct {
	ID   string
	Addr string
	Dir  string
	Node *datanode.Node
}

// handedOut remembers every port freePort returned in this test binary, so
// two servers that have not bound yet are never given the same one.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns a loopback port that was free a moment ago and that no
// other caller in this process has been given.
func freePort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 100; i++ {
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
	t.Fatal("no fresh loopback port after 100 tries")
	return 0
}

// freePorts returns the first of n consecutive loopback ports, all free a
// moment ago and none handed out before (for `stratum dev --base-port`).
func freePorts(t testing.TB, n int) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		base := freePort(t)
		ok := true
		for p := base + 1; p < base+n && ok; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
			handedOut.Lock()
			ok = !handedOut.ports[p]
			handedOut.ports[p] = true
			handedOut.Unlock()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// testLogger sends logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// MustStartCluster starts an embedded etcd and n data nodes; everything is
// stopped in t.Cleanup.
func MustStartCluster(t testing.TB, n int, tune func(*datanode.Config)) *Cluster {
	t.Helper()
	return mustStartClusterWith(t, n, tune, nil)
}

// mustStartClusterWith is MustStartCluster with a step (before) that runs
// once etcd is up, before any data node starts.
func mustStartClusterWith(t testing.TB, n int, tune func(*datanode.Config), before func(*Cluster)) *Cluster {
	t.Helper()
	c := &Cluster{t: t, dir: t.TempDir(), Tune: tune}
	c.startEtcd()
	if before != nil {
		before(c)
	}
	for i := 0; i < n; i++ {
		c.AddNode()
	}
	c.WaitRingConverged()
	return c
}

// WaitRingConverged waits until every running node uses the ring that is
// current in etcd.
func (c *Cluster) WaitRingConverged() {
	c.t.Helper()
	want, err := c.CP.LoadRing(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	for _, tn := range c.Nodes {
		if tn.Node == nil {
			continue
		}
		Eventually(c.t, 10*time.Second, tn.ID+" has the current ring", func() bool {
			return tn.Node.Ring().Revision() == want.Revision()
		})
	}
}

func (c *Cluster) startEtcd() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := controlplane.DefaultMemberConfig(filepath.Join(c.dir, "etcd"))
	cfg.BcryptCost = 4 // bcrypt.MinCost: etcd logins are slow under the race detector
	cfg.ClientURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(c.t))}
	cfg.PeerURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(c.t))}
	m, err := controlplane.StartMember(ctx, cfg)
	if err != nil {
		c.t.Fatalf("start etcd: %v", err)
	}
	c.Member = m
	c.t.Cleanup(m.Close)
	c.CP, err = controlplane.Dial(ctx, controlplane.DefaultClientConfig(m.ClientURLs()...))
	if err != nil {
		c.t.Fatalf("dial etcd: %v", err)
	}
	c.t.Cleanup(func() { c.CP.Close() })
}

// AddNode starts one more data node (n1, n2, ...) and returns its index.
func (c *Cluster) AddNode() int {
	c.t.Helper()
	id := fmt.Sprintf("n%d", len(c.Nodes)+1)
	tn := &TestNode{ID: id, Dir: filepath.Join(c.dir, id), Addr: fmt.Sprintf("127.0.0.1:%d", freePort(c.t))}
	c.Nodes = append(c.Nodes, tn)
	c.StartNode(len(c.Nodes) - 1)
	return len(c.Nodes) - 1
}

// NodeConfig is the configuration node i starts with.
func (c *Cluster) NodeConfig(i int) datanode.Config {
	tn := c.Nodes[i]
	cfg := datanode.DefaultConfig()
	cfg.ID, cfg.ListenAddr, cfg.Store.Dir = tn.ID, tn.Addr, tn.Dir
	cfg.Control = cli.NewControlPlane(c.CP)
	cfg.Logger = testLogger(c.t).With("node", tn.ID)
	cfg.Store.Logger = cfg.Logger
	cfg.LeaseTTL = 2 * time.Second
	cfg.PeerTimeout = 2 * time.Second
	cfg.ReadyWaitsForPartitions = false // no partition planner runs in process
	if c.Tune != nil {
		c.Tune(&cfg)
	}
	return cfg
}

// StartNode starts (or restarts) node i on its address and directory.
func (c *Cluster) StartNode(i int) {
	c.t.Helper()
	n, err := datanode.New(c.NodeConfig(i))
	if err != nil {
		c.t.Fatalf("node %d: %v", i, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		c.t.Fatalf("start node %s: %v", c.Nodes[i].ID, err)
	}
	c.Nodes[i].Node = n
	c.t.Cleanup(func() { n.Close(context.Background()) })
}

// StopNode stops node i: its port closes, its registration is released.
func (c *Cluster) StopNode(i int) {
	c.t.Helper()
	if err := c.Nodes[i].Node.Close(context.Background()); err != nil {
		c.t.Logf("stop %s: %v", c.Nodes[i].ID, err)
	}
	c.Nodes[i].Node = nil
}

// Client returns a client whose endpoint is node i.
func (c *Cluster) Client(i int) *client.Client {
	c.t.Helper()
	cl, err := client.New(client.Config{Endpoint: c.URL(i), Timeout: time.Minute, Token: c.Token})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// URL is node i's base URL.
func (c *Cluster) URL(i int) string { return "http://" + c.Nodes[i].Addr }

// Eventually polls cond every 20ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
