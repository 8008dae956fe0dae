package tests

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// peerHasCalls is how many presence requests node i has answered.
func peerHasCalls(t *testing.T, c *Cluster, i int) float64 {
	t.Helper()
	return max(0, metric(t, c, i, `stratum_requests_total\{method="POST",route="`+api.PathReplicaHas+`",status="200"\}`))
}

// batchGetAll reads want through node i at level and fails unless every
// object comes back with its bytes.
func batchGetAll(t *testing.T, c *Cluster, i int, want map[api.OID][]byte, level api.Consistency) {
	t.Helper()
	var oids []api.OID
	for oid := range want {
		oids = append(oids, oid)
	}
	got := 0
	err := c.Client(i).GetMany(ctxT(t), oids, level, func(oid api.OID, data []byte, err error) {
		if err != nil || !bytes.Equal(data, want[oid]) {
			t.Errorf("batch GET at %s through %s: %s: %q, %v; want its bytes", level, c.Nodes[i].ID, oid, data, err)
		}
		got++
	})
	if err != nil || got != len(oids) {
		t.Fatalf("batch GET at %s through %s: %d frames, %v; want %d", level, c.Nodes[i].ID, got, err, len(oids))
	}
}

// A batch GET at `one` answers the objects the coordinator owns from its
// own copies, with no presence request to its peers (what a Git clone
// pays per object); at quorum the peers are asked, which shows that the
// counter counts these requests. Then a fourth node joins with repair
// paused, so it owns objects it does not hold yet and the others hold
// copies they no longer own: a batch at `one` through the new node and
// through a former owner still returns every object (what it does not
// hold as an owner goes through the presence round, former owners
// included).
func TestBatchGetAtOneReadsOwnCopies(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	want := putMany(t, c, 0, 40, api.All)
	before := peerHasCalls(t, c, 1) + peerHasCalls(t, c, 2)
	batchGetAll(t, c, 0, want, api.One)
	if after := peerHasCalls(t, c, 1) + peerHasCalls(t, c, 2); after != before {
		t.Fatalf("a batch GET at one through n1, which owns every object, made %v presence requests to n2 and n3; want none", after-before)
	}
	batchGetAll(t, c, 0, want, api.Quorum)
	if after := peerHasCalls(t, c, 1) + peerHasCalls(t, c, 2); after <= before {
		t.Fatalf("a batch GET at quorum made no presence request to n2 or n3 (counter %v): the counter does not count them", after)
	}

	more := putMany(t, c, 0, 60, api.All)
	setRepairPaused(t, c, true)
	c.AddNode()
	c.WaitRingConverged()
	setRepairPaused(t, c, true)
	owned := 0
	for oid := range more {
		if got := local(t, c, 3, oid); got != "nothing" {
			t.Fatalf("n4 holds %s for %s with repair paused; want nothing (the test needs an owner without the copy)", got, oid)
		}
		if slices.ContainsFunc(c.Nodes[3].Node.Ring().Replicas([]byte(oid.String())), func(rn ring.Node) bool { return rn.ID == c.Nodes[3].ID }) {
			owned++
		}
	}
	if owned == 0 {
		t.Fatal("n4 owns none of the 60 objects after its join; the test needs some")
	}
	for _, i := range []int{3, 0} {
		batchGetAll(t, c, i, more, api.One)
	}
}

// A replica that missed a quorum delete still holds its copy. A batch GET
// at `one` through it returns that copy, as a single `one` GET through it
// does (docs/consistency.md), and a batch GET at quorum does not.
func TestBatchGetAtOneLikeASingleGet(t *testing.T) {
	data := []byte("stored, then deleted at quorum while n3 was away")
	c, oid := missedDelete(t, data)
	single, singleErr := c.Client(2).GetBytes(ctxT(t), oid, api.One)
	var batch []byte
	batchErr := errors.New("no frame")
	if err := c.Client(2).GetMany(ctxT(t), []api.OID{oid}, api.One, func(_ api.OID, d []byte, err error) {
		batch, batchErr = bytes.Clone(d), err
	}); err != nil {
		t.Fatal(err)
	}
	if singleErr != nil || batchErr != nil || !bytes.Equal(single, data) || !bytes.Equal(batch, data) {
		t.Fatalf("GET at one through n3: single %q, %v; batch %q, %v; want both n3's copy", single, singleErr, batch, batchErr)
	}
	if getErr, _ := batchVerdict(t, c, 2, oid, api.Quorum); !errors.Is(getErr, api.ErrNotFound) {
		t.Fatalf("batch GET at quorum of the deleted %s through n3: %v; want not found", oid, getErr)
	}
}
