package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/ring"
)

func TestRestartKeepsData(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	ctx := ctxT(t)
	var oids []api.OID
	var blobs [][]byte
	for i, size := range []int{10, 4096, 2 << 20} {
		data := randomBytes(int64(i+10), size)
		rec, err := c.Client(i).PutBytes(ctx, data, api.SHA256, api.All)
		if err != nil {
			t.Fatal(err)
		}
		oids, blobs = append(oids, api.MustParseOID(rec.OID)), append(blobs, data)
	}
	for i := range c.Nodes {
		c.StopNode(i)
	}
	for i := range c.Nodes {
		c.StartNode(i)
	}
	c.WaitRingConverged()
	for i, oid := range oids {
		got, err := c.Client(i).GetBytes(ctx, oid, api.All)
		if err != nil || !bytes.Equal(got, blobs[i]) {
			t.Fatalf("after restart, get %s: err %v equal %t", oid, err, bytes.Equal(got, blobs[i]))
		}
	}
}

func TestRingChangeReachesEveryNode(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	before := c.Nodes[0].Node.Ring().Revision()
	c.AddNode()
	want := c.Nodes[3].Node.Ring()
	if want.Revision() <= before || want.Len() != 4 {
		t.Fatalf("new node's ring: revision %d len %d; want > %d and 4", want.Revision(), want.Len(), before)
	}
	for _, tn := range c.Nodes {
		Eventually(t, 10*time.Second, tn.ID+" sees the 4-node ring", func() bool {
			r := tn.Node.Ring()
			return r.Revision() == want.Revision() && r.Len() == 4
		})
		doc, err := c.Client(0).Ring(ctxT(t))
		if err != nil || doc.Revision != want.Revision() || len(doc.Nodes) != 4 {
			t.Fatalf("GET /v1/ring: %+v %v", doc, err)
		}
	}
	// Removing a node is a ring change too, and it must not silently do nothing.
	if err := c.CP.RemoveFromRing(ctxT(t), "n4"); err != nil {
		t.Fatal(err)
	}
	if err := c.CP.RemoveFromRing(ctxT(t), "n4"); err == nil {
		t.Fatal("removing a node that is not in the ring succeeded; want an error")
	}
	for _, tn := range c.Nodes {
		Eventually(t, 10*time.Second, tn.ID+" sees n4 removed", func() bool {
			_, ok := tn.Node.Ring().Node("n4")
			return !ok && tn.Node.Ring().Len() == 3
		})
	}
}

// A replica refuses a call made with an older ring than its own.
func TestStaleRingIsFenced(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	data := []byte("fenced")
	oid, _ := api.Digest(api.SHA256, data)
	rev := c.Nodes[1].Node.Ring().Revision()
	put := func(rev int64) (int, []byte) {
		conn, err := net.Dial("tcp", c.Nodes[1].Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return rawReplicaPut(t, conn, c.Nodes[1].Addr, c.Nodes[0].Node, oid, rev, data)
	}
	if status, body := put(rev - 1); status != 409 || errorCode(body) != "stale_ring" {
		t.Fatalf("replica PUT with revision %d (node has %d): %d %s; want 409 stale_ring", rev-1, rev, status, body)
	}
	if got := c.Nodes[1].Node.Status().Objects; got != 0 {
		t.Fatalf("fenced write stored %d objects", got)
	}
	if status, body := put(rev); status != 201 {
		t.Fatalf("replica PUT with current revision: %d %s; want 201", status, body)
	}
}

// rawReplicaPut sends a replica PUT as coordinator `from` would.
func rawReplicaPut(t *testing.T, conn net.Conn, addr string, from *datanode.Node, oid api.OID, rev int64, data []byte) (int, []byte) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "PUT %s%s HTTP/1.1\r\nHost: %s\r\n%s: %d\r\n%s: %s\r\n%s: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		api.PathReplicas, oid, addr, api.HeaderRingRevision, rev, api.HeaderNode, from.ID(), api.HeaderGeneration, from.Generation(), len(data))
	conn.Write(data)
	return readResponse(t, conn)
}

// A coordinator whose ring is stale learns the new ring from the replica's
// refusal and retries.
func TestCoordinatorWithStaleRingRetries(t *testing.T) {
	slow := &pausableControl{}
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		if cfg.ID == "n1" {
			slow.ControlPlane = cfg.Control
			cfg.Control = slow
		}
	})
	slow.pause(true) // n1 stops hearing about ring changes
	c.AddNode()
	for _, i := range []int{1, 2} {
		Eventually(t, 10*time.Second, "n2, n3 see 4 nodes", func() bool { return c.Nodes[i].Node.Ring().Len() == 4 })
	}
	if c.Nodes[0].Node.Ring().Len() != 3 {
		t.Fatal("n1 learned the new ring although its watch is paused")
	}
	slow.pause(false) // reloads work again, but the watch stays silent
	for i := 0; i < 20; i++ {
		data := randomBytes(int64(300+i), 100)
		if _, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA256, api.All); err != nil {
			t.Fatalf("put via the stale coordinator: %v", err)
		}
	}
	if got := c.Nodes[0].Node.Ring().Len(); got != 4 {
		t.Fatalf("stale coordinator's ring has %d nodes after its writes were refused; want 4", got)
	}
}

// pausableControl wraps a control plane to make one node's ring stale: its
// watch never delivers a ring of 4 or more nodes (a lost watch), and while
// paused, ring loads fail too.
type pausableControl struct {
	datanode.ControlPlane
	mu     sync.Mutex
	paused bool
}

func (p *pausableControl) pause(on bool) {
	p.mu.Lock()
	p.paused = on
	p.mu.Unlock()
}

func (p *pausableControl) isPaused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

func (p *pausableControl) WatchRing(ctx context.Context, publish func(*ring.Ring)) error {
	return p.ControlPlane.WatchRing(ctx, func(r *ring.Ring) {
		if r.Len() < 4 {
			publish(r)
		}
	})
}

func (p *pausableControl) LoadRing(ctx context.Context) (*ring.Ring, error) {
	if p.isPaused() {
		return nil, errors.New("paused")
	}
	return p.ControlPlane.LoadRing(ctx)
}

// hungPeer accepts connections and never answers.
func hungPeer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func TestHungReplicaNeverHoldsARequestPastItsDeadline(t *testing.T) {
	const peerTimeout = 500 * time.Millisecond
	c := MustStartCluster(t, 2, func(cfg *datanode.Config) { cfg.PeerTimeout = peerTimeout })
	ctx := ctxT(t)
	if err := c.CP.JoinRing(ctx, ring.Node{ID: "hung", Addr: hungPeer(t)}, ring.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	for _, tn := range c.Nodes {
		Eventually(t, 10*time.Second, "ring with the hung node", func() bool { return tn.Node.Ring().Len() == 3 })
	}
	data := randomBytes(5, 2048)
	rec, err := c.Client(0).PutBytes(ctx, data, api.SHA256, api.Quorum)
	if err != nil {
		t.Fatalf("quorum put with one hung replica: %v", err)
	}
	if len(rec.Acked) != 2 || len(rec.Pending)+len(rec.Failed) != 1 || rec.Degraded != (len(rec.Failed) == 1) {
		t.Fatalf("receipt %+v; want 2 acked, the hung one pending (not degraded) or failed (degraded)", rec)
	}
	oid := api.MustParseOID(rec.OID)
	if _, err := c.Client(1).GetBytes(ctx, oid, api.Quorum); err != nil {
		t.Fatalf("quorum get with one hung replica: %v", err)
	}
	other := randomBytes(6, 2048)
	if _, err := c.Client(0).PutBytes(ctx, other, api.SHA256, api.All); !errors.Is(err, api.ErrQuorumNotReached) {
		t.Fatalf("put at all with a hung replica: %v; want quorum_not_reached", err)
	}
	if _, err := c.Client(0).GetBytes(ctx, oid, api.All); !errors.Is(err, api.ErrQuorumNotReached) {
		t.Fatalf("get at all with a hung replica: %v; want quorum_not_reached", err)
	}
	if _, err := c.Client(0).Head(ctx, oid, api.All); !errors.Is(err, api.ErrQuorumNotReached) {
		t.Fatalf("head at all with a hung replica: %v; want quorum_not_reached", err)
	}
}

func TestConcurrentPutsOfOneObject(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	data := randomBytes(42, 8192)
	var wg sync.WaitGroup
	created := make(chan bool, 12)
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := c.Client(i%3).PutBytes(ctxT(t), data, api.SHA256, api.All)
			if err != nil {
				t.Errorf("put %d: %v", i, err)
				return
			}
			created <- rec.Created
		}()
	}
	wg.Wait()
	close(created)
	n := 0
	for cr := range created {
		if cr {
			n++
		}
	}
	if n < 1 {
		t.Fatalf("%d of 12 concurrent puts reported created; want at least 1", n)
	}
	for i := range c.Nodes {
		if got := c.Nodes[i].Node.Status().Objects; got != 1 {
			t.Fatalf("node %d holds %d objects; want 1", i, got)
		}
	}
}
