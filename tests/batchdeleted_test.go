package tests

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

// batchVerdict reads oid through node i with a batch GET and a batch has
// at level, and returns the GET's error (nil: it returned the bytes) and
// which list of the has reply names it.
func batchVerdict(t *testing.T, c *Cluster, i int, oid api.OID, level api.Consistency) (getErr error, has string) {
	t.Helper()
	calls := 0
	err := c.Client(i).GetMany(ctxT(t), []api.OID{oid}, level, func(got api.OID, _ []byte, err error) {
		calls++
		getErr = err
	})
	if err != nil || calls != 1 {
		t.Fatalf("batch GET of %s through %s: %d frames, %v; want 1 frame", oid, c.Nodes[i].ID, calls, err)
	}
	rep, err := c.Client(i).HasMany(ctxT(t), []api.OID{oid}, level)
	if err != nil {
		t.Fatalf("batch has of %s through %s: %v", oid, c.Nodes[i].ID, err)
	}
	switch s := oid.String(); {
	case slices.Contains(rep.Present, s):
		has = "present"
	case slices.Contains(rep.Missing, s):
		has = "missing"
	default:
		has = "unknown"
	}
	return getErr, has
}

// A replica that missed a quorum delete comes back still holding its copy
// (hints and anti-entropy held back). A batch GET and :has at quorum
// through that very replica answer as a single GET does: the tombstones
// of the other two win, so the object is not found and missing.
func TestBatchReadsSeeTombstones(t *testing.T) {
	c, oid := missedDelete(t, []byte("stored, then deleted while n3 was away"))
	getErr, has := batchVerdict(t, c, 2, oid, api.Quorum)
	if !errors.Is(getErr, api.ErrNotFound) {
		t.Fatalf("batch GET at quorum of the deleted %s through n3: %v; want not found", oid, getErr)
	}
	if has != "missing" {
		t.Fatalf("batch has at quorum of the deleted %s through n3: %s; want missing", oid, has)
	}
}

// missedDelete starts 3 nodes with hints and anti-entropy held back,
// stores data on all three, deletes it at quorum while n3 is stopped and
// restarts n3, which still holds its copy.
func missedDelete(t *testing.T, data []byte) (*Cluster, api.OID) {
	t.Helper()
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.HintInterval, cfg.AntiEntropyInterval = time.Hour, 0
	})
	rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA256, api.All)
	if err != nil {
		t.Fatal(err)
	}
	oid := api.MustParseOID(rec.OID)
	c.StopNode(2)
	if del, err := c.Client(0).Delete(ctxT(t), oid, api.Quorum); err != nil || len(del.Acked) != 2 {
		t.Fatalf("delete at quorum with n3 down: %+v, %v; want acked by n1 and n2", del, err)
	}
	waitHintsHeld(t, c, 0, 1)
	c.StartNode(2)
	if got := local(t, c, 2, oid); got != "copy" {
		t.Fatalf("n3 holds %s after its return; want its old copy (the test needs a replica that missed the delete)", got)
	}
	return c, oid
}

// waitHintsHeld waits until node i holds at least k hints: the delete it
// coordinated has finished its calls to the stopped replicas (each failed
// call leaves a hint), so none of them is still in flight to land on a
// replica after its restart. Hint delivery itself is held back by the
// test's HintInterval.
func waitHintsHeld(t *testing.T, c *Cluster, i, k int) {
	t.Helper()
	Eventually(t, 20*time.Second, "the coordinator holds a hint for each replica the delete missed", func() bool {
		return status(t, c, i).HintsPending >= k
	})
}

// A delete acknowledged at consistency one, while the other two replicas
// were away, leaves one tombstone against two older copies: a quorum of
// copies, but every copy older than the delete. A ref transaction that
// requires the object is refused (422 missing_object), as a quorum GET
// would not find it either. Before the fix the object check counted the
// two copies, a quorum, and let the ref point at a deleted object.
func TestRefTransactionRefusesAnObjectDeletedAtOne(t *testing.T) {
	c := refsCluster(t, 3, 4, func(cfg *datanode.Config) {
		cfg.HintInterval, cfg.AntiEntropyInterval = time.Hour, 0
	})
	data := []byte("a commit deleted at consistency one before a ref points at it")
	rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA1, api.All)
	if err != nil {
		t.Fatal(err)
	}
	oid := api.MustParseOID(rec.OID)
	c.StopNode(1)
	c.StopNode(2)
	if del, err := c.Client(0).Delete(ctxT(t), oid, api.One); err != nil || !slices.Equal(del.Acked, []string{c.Nodes[0].ID}) {
		t.Fatalf("delete at one with n2 and n3 down: %+v, %v; want acked by n1 alone", del, err)
	}
	waitHintsHeld(t, c, 0, 2)
	c.StartNode(1)
	c.StartNode(2)
	c.waitPartitionsServing(t, 4)
	for i, want := range []string{"tombstone", "copy", "copy"} {
		if got := local(t, c, i, oid); got != want {
			t.Fatalf("%s holds %s; want %s (the test needs one tombstone against two older copies)", c.Nodes[i].ID, got, want)
		}
	}
	for i := range c.Nodes {
		Eventually(t, 20*time.Second, "the object check reaches a quorum (breakers to the returned nodes close)", func() bool {
			_, err = c.Client(i).RefTxn(ctxT(t), "r", api.RefTxn{Updates: []api.RefUpdate{
				{Name: "refs/heads/main", Old: api.ZeroOID, New: oid.String()}}}, true)
			return !errors.Is(err, api.ErrQuorumNotReached)
		})
		if !errors.Is(err, api.ErrMissingObject) {
			t.Fatalf("ref transaction through %s to the deleted %s: %v; want missing_object", c.Nodes[i].ID, oid, err)
		}
	}
}

// A drain lets a quorum delete succeed on the write placement (an owner
// and the node that replaces the draining one) while the two other owners
// are away, so the deleted object has two stale copies against two
// tombstones once they return. A ref transaction that requires the
// object is refused (422 missing_object), and the batch reads say deleted.
func TestRefTransactionRefusesADeletedObject(t *testing.T) {
	c := refsCluster(t, 4, 8, func(cfg *datanode.Config) {
		cfg.HintInterval, cfg.AntiEntropyInterval = time.Hour, 0
	})
	data := []byte("a commit that is deleted before a ref points at it")
	rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA1, api.All)
	if err != nil {
		t.Fatal(err)
	}
	oid := api.MustParseOID(rec.OID)
	owners := c.Nodes[0].Node.Ring().Replicas([]byte(oid.String()))
	index := func(id string) int {
		return slices.IndexFunc(c.Nodes, func(tn *TestNode) bool { return tn.ID == id })
	}
	stale, draining := index(owners[1].ID), index(owners[2].ID)
	coord := index(owners[0].ID)
	if err := c.Client(coord).SetRepairPaused(ctxT(t), true); err != nil { // the drain must not move or shed anything
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "every node sees the pause", func() bool {
		for i := range c.Nodes {
			if !status(t, c, i).Repair.Paused {
				return false
			}
		}
		return true
	})
	if err := c.Client(coord).NodeAction(ctxT(t), c.Nodes[draining].ID, "drain", false); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "a put of the object leaves the draining node out", func() bool {
		r, err := c.Client(coord).PutBytes(ctxT(t), data, api.SHA1, api.One)
		return err == nil && !slices.Contains(append(append(r.Acked, r.Pending...), r.Failed...), c.Nodes[draining].ID)
	})
	c.StopNode(stale)
	c.StopNode(draining) // deletes reach a draining owner too: it must miss this one
	del, err := c.Client(coord).Delete(ctxT(t), oid, api.Quorum)
	if err != nil || slices.Contains(del.Acked, c.Nodes[stale].ID) || slices.Contains(del.Acked, c.Nodes[draining].ID) {
		t.Fatalf("delete at quorum: %+v, %v; want acknowledged by neither the stopped %s nor the draining %s",
			del, err, c.Nodes[stale].ID, c.Nodes[draining].ID)
	}
	c.StartNode(stale)
	c.StartNode(draining)
	Eventually(t, 20*time.Second, "both returned nodes readable again", func() bool {
		nodes, err := c.Client(coord).Nodes(ctxT(t))
		back := 0
		for _, ns := range nodes {
			if (ns.ID == c.Nodes[stale].ID || ns.ID == c.Nodes[draining].ID) && ns.Live && ns.State != api.StateDown {
				back++
			}
		}
		return err == nil && back == 2
	})
	for _, i := range []int{stale, draining} {
		if got := local(t, c, i, oid); got != "copy" {
			t.Fatalf("%s holds %s; want its old copy (the test needs two stale copies)", c.Nodes[i].ID, got)
		}
	}
	_, err = c.Client(coord).RefTxn(ctxT(t), "r", api.RefTxn{Updates: []api.RefUpdate{
		{Name: "refs/heads/main", Old: api.ZeroOID, New: oid.String()}}}, true)
	if !errors.Is(err, api.ErrMissingObject) {
		t.Fatalf("ref transaction to the deleted %s: %v; want missing_object", oid, err)
	}
	getErr, has := batchVerdict(t, c, stale, oid, api.Quorum)
	if !errors.Is(getErr, api.ErrNotFound) || has != "missing" {
		t.Fatalf("batch reads at quorum of the deleted %s through %s: GET %v, has %s; want not found and missing",
			oid, c.Nodes[stale].ID, getErr, has)
	}
}
