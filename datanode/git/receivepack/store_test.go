package receivepack

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/datanode/git/backend"
)

// faultyPuts is Memory whose Put fails from call failAt on (0: never), and
// which records how many Puts overlap. Until maxInFlight reaches waitFor,
// each Put waits (at most 5 s), so that overlap is observed, not hoped for.
type faultyPuts struct {
	*backend.Memory
	failAt, waitFor int
	mu              sync.Mutex
	calls, inFlight int
	maxInFlight     int
}

func (f *faultyPuts) Put(ctx context.Context, objs []backend.Object) error {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.inFlight--; f.mu.Unlock() }()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		f.mu.Lock()
		reached := f.maxInFlight >= f.waitFor
		f.mu.Unlock()
		if reached {
			break
		}
		time.Sleep(time.Millisecond) // polling, with the deadline above
	}
	if f.failAt > 0 && call >= f.failAt {
		return errors.New("injected: quorum not reached")
	}
	return f.Memory.Put(ctx, objs)
}

// TestStoreInBatches: with one object per batch and 3 Puts in flight, every
// object is stored, 3 Puts overlap and never more.
func TestStoreInBatches(t *testing.T) {
	blob, tree, commit := smallHistory(t)
	f := &faultyPuts{Memory: backend.NewMemory(), waitFor: 3}
	var out strings.Builder
	res, err := Serve(context.Background(), strings.NewReader(string(request0(create(id(t, commit), "report-status"),
		rawPack(t, blob, tree, commit)))), &out, f, testRepo, Limits{BatchObjects: 1, PutConcurrency: 3})
	if err != nil || res.Stored != 3 || f.calls != 3 || f.maxInFlight != 3 || res.Commands[0].Status != statusOK {
		t.Fatalf("stored %d in %d Puts, %d at once, status %q, %v; want 3 in 3, 3 at once, ok",
			res.Stored, f.calls, f.maxInFlight, res.Commands[0].Status, err)
	}
}

// TestStoreFailure: a Put that fails is the unpack error and no ref moves.
func TestStoreFailure(t *testing.T) {
	blob, tree, commit := smallHistory(t)
	f := &faultyPuts{Memory: backend.NewMemory(), failAt: 2, waitFor: 1}
	var out strings.Builder
	res, err := Serve(context.Background(), strings.NewReader(string(request0(create(id(t, commit), "report-status"),
		rawPack(t, blob, tree, commit)))), &out, f, testRepo, Limits{BatchObjects: 1, PutConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	lines := pktLines(t, []byte(out.String()), false)
	if len(lines) != 3 || !strings.Contains(lines[0], "unpack storing objects: injected") || lines[1] != "ng refs/heads/x unpacker error" {
		t.Fatalf("got %q; want unpack storing objects: injected..., ng refs/heads/x unpacker error", lines)
	}
	if refs, _ := f.Refs(context.Background(), testRepo); len(refs) != 0 || res.Stored != 1 {
		t.Fatalf("after a failed Put: refs %v, %d stored; want no refs, 1 stored", refs, res.Stored)
	}
}
