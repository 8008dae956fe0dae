package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

// A quorum GET confirms its local copy with one peer's index entry, and
// concurrent GETs through one node ask each peer in shared :has requests
// (datanode/objects/coalesce.go): one reply answers many reads. Each read
// must still get its own answer. Through n3, which was away while some
// objects were deleted and others written:
//
//   - a live object (copies everywhere) is found, with its bytes;
//   - a deleted one, of which n3 kept its copy, is not found: the peers'
//     tombstones win over n3's older copy;
//   - one written while n3 was away is found (n3 has nothing, a peer's
//     presence answer says where the bytes are);
//   - one never written is not found.
//
// 32 goroutines read the four kinds in a seeded random order, three times
// over, so the batches mix every kind of answer.
func TestConcurrentGetsGetTheirOwnPresenceAnswers(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.HintInterval, cfg.AntiEntropyInterval = time.Hour, 0
	})
	const k = 24
	put := func(i, level int, what string) (api.OID, []byte) {
		data := []byte(fmt.Sprintf("%s object %d", what, i))
		rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA256, []api.Consistency{api.Quorum, api.All}[level])
		if err != nil {
			t.Fatal(err)
		}
		return api.MustParseOID(rec.OID), data
	}
	type read struct {
		oid  api.OID
		want []byte // nil: not found
		kind string
	}
	var reads []read
	var doomed []api.OID
	for i := range k {
		oid, data := put(i, 1, "live")
		reads = append(reads, read{oid, data, "live"})
		oid, _ = put(i, 1, "deleted")
		reads, doomed = append(reads, read{oid, nil, "deleted"}), append(doomed, oid)
		oid, _ = api.Digest(api.SHA256, []byte(fmt.Sprintf("never written %d", i)))
		reads = append(reads, read{oid, nil, "never written"})
	}
	c.StopNode(2)
	for _, oid := range doomed {
		if del, err := c.Client(0).Delete(ctxT(t), oid, api.Quorum); err != nil || len(del.Acked) != 2 {
			t.Fatalf("delete at quorum with n3 down: %+v, %v; want acked by n1 and n2", del, err)
		}
	}
	for i := range k {
		oid, data := put(i, 0, "written while n3 was away")
		reads = append(reads, read{oid, data, "written while n3 was away"})
	}
	waitHintsHeld(t, c, 0, k)
	c.StartNode(2)
	if got := local(t, c, 2, doomed[0]); got != "copy" {
		t.Fatalf("n3 holds %s of a deleted object after its return; want its old copy (the test needs it)", got)
	}

	rng := rand.New(rand.NewPCG(7, 7))
	var order []int
	for range 3 {
		order = append(order, rng.Perm(len(reads))...)
	}
	work := make(chan int, len(order))
	for _, i := range order {
		work <- i
	}
	close(work)
	var mu sync.Mutex
	var wrong []string
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r := reads[i]
				got, err := getAll(ctx, c, 2, r.oid)
				var bad string
				switch {
				case r.want == nil && !errors.Is(err, api.ErrNotFound):
					bad = fmt.Sprintf("%s %s: got %q, %v; want not found", r.kind, r.oid, got, err)
				case r.want != nil && (err != nil || !bytes.Equal(got, r.want)):
					bad = fmt.Sprintf("%s %s: got %q, %v; want %q", r.kind, r.oid, got, err, r.want)
				}
				if bad != "" {
					mu.Lock()
					wrong = append(wrong, bad)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(wrong) > 0 {
		t.Fatalf("%d of %d quorum GETs through n3 answered wrongly, e.g.:\n%s", len(wrong), len(order), wrong[0])
	}
}

// getAll reads oid at quorum through node i.
func getAll(ctx context.Context, c *Cluster, i int, oid api.OID) ([]byte, error) {
	body, _, err := c.Client(i).Get(ctx, oid, api.Quorum)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}
