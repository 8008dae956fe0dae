package repair

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// TestSettleLoopChecksEachNewRingPromptly: SettleLoop records a ring
// revision as settled within a few settlePolls of seeing it, not after a
// whole settleInterval (10 s here); a revision under which the node holds
// a copy the ring places elsewhere is not recorded.
func TestSettleLoopChecksEachNewRingPromptly(t *testing.T) {
	st, err := store.Open(store.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var cur atomic.Pointer[clusterview.View]
	setRing := func(rev int64, ids ...string) *ring.Ring {
		var nodes []ring.Node
		for _, id := range ids {
			nodes = append(nodes, ring.Node{ID: id, Addr: id + ":1"})
		}
		r, err := ring.New(rev, nodes, ring.Config{Replicas: 2, VNodes: 64})
		if err != nil {
			t.Fatal(err)
		}
		v, err := clusterview.Build(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		cur.Store(v)
		return r
	}
	r := setRing(5, "a", "b", "c")
	n := New(Config{ID: "a", AntiEntropyInterval: 10 * time.Minute}, Deps{Logger: slog.Default(), Store: st, View: cur.Load})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); n.SettleLoop(ctx) }()
	defer func() { cancel(); <-done }()

	waitSettled := func(rev int64) {
		t.Helper()
		deadline := time.Now().Add(5 * settlePoll)
		for n.settled.Load() < rev {
			if time.Now().After(deadline) {
				t.Fatalf("settled revision %d, %s after revision %d appeared; want %d (a check within settlePoll)", n.settled.Load(), 5*settlePoll, rev, rev)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitSettled(5) // an empty store

	// A copy the ring places on a: the next revision settles too.
	var mine api.OID
	for i := 1; ; i++ {
		oid, err := api.Digest(api.SHA256, []byte(fmt.Sprint("object ", i)))
		if err != nil {
			t.Fatal(err)
		}
		if placedOn(r, oid, "a") {
			mine = oid
			if _, err := st.Put(ctx, oid, []byte(fmt.Sprint("object ", i))); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	setRing(6, "a", "b", "c")
	waitSettled(6)

	// A ring without a: the copy is misplaced, so revision 7 does not
	// settle, whether the loop or this test runs the check.
	r = setRing(7, "b", "c", "d")
	if placedOn(r, mine, "a") {
		t.Fatal("a ring without a places a copy on a: the test proves nothing")
	}
	n.settleSelf(ctx, cur.Load())
	if got := n.settled.Load(); got != 6 {
		t.Fatalf("settled revision %d with a misplaced copy; want 6", got)
	}
}
