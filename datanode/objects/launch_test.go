package objects

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/budget"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/inflight"
	"github.com/stratum-store/stratum/datanode/payload"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/ring"
)

// A PUT whose replica calls are refused because the node is closing gives
// back what the calls would have: the body's memory budget and its spool
// file are released once the handler lets go of the payload.
func TestRefusedLaunchReleasesThePayload(t *testing.T) {
	r, err := ring.New(1, []ring.Node{{ID: "a", Addr: "a:1"}, {ID: "b", Addr: "b:1"}, {ID: "c", Addr: "c:1"}}, ring.Config{Replicas: 3, VNodes: 16})
	if err != nil {
		t.Fatal(err)
	}
	var view atomic.Pointer[clusterview.View]
	view.Store(&clusterview.View{Ring: r, Write: r})
	var group inflight.Group
	group.Stop() // Close has begun: no new replica call starts
	n := New(Config{ID: "a"}, Deps{Logger: slog.New(slog.DiscardHandler), Bodies: budget.New(1<<20, api.ErrBusy),
		View: view.Load, Fenced: new(atomic.Bool).Load, Inflight: &group, Ready: func() bool { return true }})
	f := func(large bool) {
		t.Helper()
		data := []byte("a body that was read, then the node began to close")
		oid, _ := api.Digest(api.SHA256, data)
		held, err := n.bodies.ReserveBody(int64(len(data)), 1<<10)
		if err != nil {
			t.Fatal(err)
		}
		p := &payload.Payload{Data: data, Size: int64(len(data))}
		if large {
			if p.File, err = os.CreateTemp(t.TempDir(), "body-*"); err != nil {
				t.Fatal(err)
			}
		}
		p.Free = func() { n.bodies.Release(held) }
		p.Hold(1) // the handler's
		_, err = n.putOnce(context.Background(), oid, p, api.Quorum, 1)
		if !errors.Is(err, api.ErrNotReady) && !errors.Is(err, api.ErrQuorumNotReached) {
			t.Fatalf("put while closing: %v; want not ready or quorum not reached", err)
		}
		p.Release()
		if got := n.bodies.Used(); got != 0 {
			t.Fatalf("body budget in use after the refused put (large=%v): %d bytes; want 0", large, got)
		}
		if got := p.Holds(); got != 0 {
			t.Fatalf("payload holds after the refused put (large=%v): %d; want 0", large, got)
		}
		if large {
			if _, err := p.File.Stat(); !errors.Is(err, os.ErrClosed) {
				t.Fatalf("spool file after the refused put: Stat says %v; want closed", err)
			}
		}
	}
	f(false)
	f(true)
}

// A quorum GET that starts once Close has begun makes no replica call: its
// own copy is not read (the store may be closing; this node has none) and
// no presence question is queued for a peer. Each call answers "shutting
// down" at once, so the read ends with a quorum error instead of waiting.
func TestReadRefusedWhileClosing(t *testing.T) {
	r, err := ring.New(1, []ring.Node{{ID: "a", Addr: "127.0.0.1:1"}, {ID: "b", Addr: "127.0.0.1:2"}, {ID: "c", Addr: "127.0.0.1:3"}}, ring.Config{Replicas: 3, VNodes: 16})
	if err != nil {
		t.Fatal(err)
	}
	var view atomic.Pointer[clusterview.View]
	view.Store(&clusterview.View{Ring: r, Write: r})
	var group inflight.Group
	group.Stop()
	n := New(Config{ID: "a", PeerTimeout: time.Second, HedgeDelay: time.Millisecond}, Deps{Logger: slog.New(slog.DiscardHandler),
		Life: context.Background(), Peers: peer.New(peer.Options{ID: "a", Generation: "g1", BreakerThreshold: 100, BreakerCooldown: time.Second}),
		View: view.Load, Fenced: new(atomic.Bool).Load, Inflight: &group, Ready: func() bool { return true }})
	oid, _ := api.Digest(api.SHA256, []byte("read while the node closes"))
	_, err = n.Get(context.Background(), oid, api.Quorum)
	if !errors.Is(err, api.ErrQuorumNotReached) {
		t.Fatalf("GET while closing: %v; want quorum not reached", err)
	}
	n.presenceQ.mu.Lock()
	queued := len(n.presenceQ.queues)
	n.presenceQ.mu.Unlock()
	if queued != 0 {
		t.Fatalf("GET while closing left presence questions queued for %d peers; want none", queued)
	}
}
