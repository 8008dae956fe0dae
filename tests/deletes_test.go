package tests

import (
	"errors"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/datanode/store"
)

// local reports what node i's own store holds for oid: "copy",
// "tombstone" or "nothing".
func local(t *testing.T, c *Cluster, i int, oid api.OID) string {
	t.Helper()
	e, err := c.Nodes[i].Node.LocalEntry(ctxT(t), oid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "nothing"
	case err != nil:
		t.Fatalf("%s: local entry of %s: %v", c.Nodes[i].ID, oid, err)
	case e.Deleted:
		return "tombstone"
	}
	return "copy"
}

// deleteSome deletes the first k of objs through node i at quorum and
// returns the deleted and the kept objects.
func deleteSome(t *testing.T, c *Cluster, i int, objs map[api.OID][]byte, k int) (deleted, kept map[api.OID][]byte) {
	t.Helper()
	deleted, kept = map[api.OID][]byte{}, map[api.OID][]byte{}
	for oid, data := range objs {
		if len(deleted) == k {
			kept[oid] = data
			continue
		}
		rec, err := c.Client(i).Delete(ctxT(t), oid, api.Quorum)
		if err != nil || !rec.Deleted || !rec.Existed || len(rec.Acked) < 2 {
			t.Fatalf("delete %s: %+v, %v", oid, rec, err)
		}
		deleted[oid] = data
	}
	return deleted, kept
}

// checkConverged waits until every node holds a tombstone for each deleted
// object and a copy of each kept one, then checks that reads at every
// level through every node agree.
func checkConverged(t *testing.T, c *Cluster, deleted, kept map[api.OID][]byte, within time.Duration) {
	t.Helper()
	for i := range c.Nodes {
		Eventually(t, within, c.Nodes[i].ID+" holds tombstones and copies", func() bool {
			for oid := range deleted {
				if local(t, c, i, oid) != "tombstone" {
					return false
				}
			}
			for oid := range kept {
				if local(t, c, i, oid) != "copy" {
					return false
				}
			}
			return true
		})
	}
	for i := range c.Nodes {
		for _, level := range []api.Consistency{api.One, api.Quorum, api.All} {
			for oid := range deleted {
				_, err := c.Client(i).GetBytes(ctxT(t), oid, level)
				for try := 0; errors.Is(err, api.ErrQuorumNotReached) && level == api.All && try < 100; try++ {
					time.Sleep(50 * time.Millisecond) // a breaker still open from the downtime
					_, err = c.Client(i).GetBytes(ctxT(t), oid, level)
				}
				if !errors.Is(err, api.ErrNotFound) {
					t.Fatalf("deleted %s read at %s through %s: %v; want not found", oid, level, c.Nodes[i].ID, err)
				}
			}
			for oid, want := range kept {
				if got, err := c.Client(i).GetBytes(ctxT(t), oid, level); err != nil || string(got) != string(want) {
					t.Fatalf("kept %s read at %s through %s: %v", oid, level, c.Nodes[i].ID, err)
				}
			}
		}
	}
}

// A node is down while objects it holds are deleted, with hinted handoff
// off (its interval an hour), so only read repair (for the half that is
// read) and anti-entropy (for the rest) can reach it. When it returns, its old copies are never served (quorum reads
// see the newer tombstones), anti-entropy replaces them with tombstones
// instead of copying them back, and the kept objects stay.
func TestDeletedObjectStaysDeletedThroughDowntimeAndAntiEntropy(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.HintInterval, cfg.AntiEntropyInterval, cfg.AntiEntropyRate = time.Hour, 300*time.Millisecond, 100000
	})
	objs := putMany(t, c, 0, 60, api.All)
	c.StopNode(2)
	deleted, kept := deleteSome(t, c, 0, objs, 30)
	for oid := range deleted {
		if got := local(t, c, 0, oid); got != "tombstone" {
			t.Fatalf("n1 holds %s for deleted %s; want a tombstone", got, oid)
		}
	}
	c.StartNode(2)
	read := 0
	for oid := range deleted { // n3 still has its old copies now: read half of them (read repair sends those tombstones; anti-entropy the rest)
		if read++; read > len(deleted)/2 {
			break
		}
		if _, err := c.Client(2).GetBytes(ctxT(t), oid, api.Quorum); !errors.Is(err, api.ErrNotFound) {
			t.Fatalf("deleted %s read at quorum through the returning n3: %v; want not found", oid, err)
		}
	}
	checkConverged(t, c, deleted, kept, 30*time.Second)
	time.Sleep(time.Second) // three more anti-entropy rounds: nothing comes back
	checkConverged(t, c, deleted, kept, time.Second)
}

// The same through hinted handoff alone (anti-entropy off): the hints the
// coordinator kept for the down node deliver tombstones, not copies.
func TestDeleteHintsDeliverTombstones(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.HintInterval, cfg.AntiEntropyInterval = 50*time.Millisecond, 0
	})
	objs := putMany(t, c, 0, 40, api.All)
	c.StopNode(2)
	deleted, kept := deleteSome(t, c, 0, objs, 20)
	c.StartNode(2)
	checkConverged(t, c, deleted, kept, 30*time.Second)
}

// A PUT after a DELETE stores the object again, and a DELETE after a PUT
// removes it, even when the coordinator's wall clock is ten minutes behind
// the one that stamped the earlier operation: the replica answers
// "superseded" with its newer stamp and the coordinator goes again above
// it. Anti-entropy afterwards changes nothing.
func TestPutAfterDeleteWithSkewedClocks(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.AntiEntropyInterval, cfg.AntiEntropyRate = 300*time.Millisecond, 100000
		if cfg.ID == "n1" {
			cfg.Clock = func() time.Time { return time.Now().Add(-10 * time.Minute) }
		}
		if cfg.ID == "n2" {
			cfg.Clock = func() time.Time { return time.Now().Add(10 * time.Minute) }
		}
	})
	data := []byte("deleted, then stored again")
	oid, _ := api.Digest(api.SHA256, data)
	for round := range 3 {
		if _, err := c.Client(1).PutBytes(ctxT(t), data, api.SHA256, api.All); err != nil { // n2: clock ahead
			t.Fatalf("round %d: put through n2: %v", round, err)
		}
		if _, err := c.Client(0).Delete(ctxT(t), oid, api.Quorum); err != nil { // n1: clock behind
			t.Fatalf("round %d: delete through n1: %v", round, err)
		}
		for i := range c.Nodes {
			if _, err := c.Client(i).GetBytes(ctxT(t), oid, api.Quorum); !errors.Is(err, api.ErrNotFound) {
				t.Fatalf("round %d: read after the delete through %s: %v; want not found", round, c.Nodes[i].ID, err)
			}
		}
		rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA256, api.Quorum) // n1, whose clock is behind the tombstone's stamp
		if err != nil || !rec.Created {
			t.Fatalf("round %d: put after delete through n1: %+v, %v; want created", round, rec, err)
		}
		for i := range c.Nodes {
			if got, err := c.Client(i).GetBytes(ctxT(t), oid, api.Quorum); err != nil || string(got) != string(data) {
				t.Fatalf("round %d: read after the re-put through %s: %v", round, c.Nodes[i].ID, err)
			}
		}
	}
	time.Sleep(time.Second)
	checkConverged(t, c, nil, map[api.OID][]byte{oid: data}, 10*time.Second)
}

// DELETE answers like the other object routes: a receipt, the consistency
// levels, and JSON errors for bad input; deleting an object never stored
// is acknowledged with existed=false.
func TestDeleteReceiptAndErrors(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	data := []byte("to be deleted")
	rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA1, api.All)
	if err != nil {
		t.Fatal(err)
	}
	oid, _ := api.ParseOID(rec.OID)
	del, err := c.Client(1).Delete(ctxT(t), oid, api.All)
	if err != nil || !del.Existed || len(del.Acked) != 3 || del.Required != 3 {
		t.Fatalf("delete at all: %+v, %v", del, err)
	}
	del, err = c.Client(1).Delete(ctxT(t), oid, api.One)
	if err != nil || del.Existed {
		t.Fatalf("second delete: %+v, %v; want acknowledged, existed=false", del, err)
	}
	never, _ := api.Digest(api.SHA1, []byte("never stored"))
	if del, err := c.Client(2).Delete(ctxT(t), never, api.Quorum); err != nil || del.Existed {
		t.Fatalf("delete of an object never stored: %+v, %v", del, err)
	}
	c.StopNode(2)
	if _, err := c.Client(0).Delete(ctxT(t), never, api.All); !errors.Is(err, api.ErrQuorumNotReached) {
		t.Fatalf("delete at all with a node down: %v; want quorum_not_reached", err)
	}
	code, body := rawRequest(t, c.Nodes[0].Addr, "DELETE", "/v1/objects/not-an-oid", nil)
	if code != 400 || errorCode(body) != "invalid_oid" {
		t.Fatalf("DELETE of a bad OID: %d %s", code, body)
	}
	code, body = rawRequest(t, c.Nodes[0].Addr, "DELETE", "/v1/objects/"+oid.String()+"?consistency=most", nil)
	if code != 400 || errorCode(body) != "invalid_consistency" {
		t.Fatalf("DELETE with a bad level: %d %s", code, body)
	}
}

// Deleted objects' bytes in the value log are reclaimed: each node's
// collector rewrites the segments that deletes left mostly garbage, and
// /v1/status shows the log shrink while every kept object still reads.
func TestValueLogReclaimedAfterDeletes(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.Store.SegmentSize = 64 << 10
		cfg.ValueLogGCInterval = 200 * time.Millisecond
	})
	cl := c.Client(0)
	var oids []api.OID
	for i := range 120 {
		data := randomBytes(int64(7000+i), 4096)
		rec, err := cl.PutBytes(ctxT(t), data, api.SHA256, api.All)
		if err != nil {
			t.Fatal(err)
		}
		oids = append(oids, api.MustParseOID(rec.OID))
	}
	before := make([]int64, 3)
	for i := range c.Nodes {
		before[i] = c.Nodes[i].Node.Status().ValueLogBytes
		if before[i] < 120*4096 {
			t.Fatalf("%s: value log %d bytes for 120 objects of 4 KiB", c.Nodes[i].ID, before[i])
		}
	}
	for _, oid := range oids[:100] {
		if _, err := cl.Delete(ctxT(t), oid, api.All); err != nil {
			t.Fatal(err)
		}
	}
	for i := range c.Nodes {
		Eventually(t, 30*time.Second, c.Nodes[i].ID+"'s value log collected", func() bool {
			st := c.Nodes[i].Node.Status()
			return st.ValueLogBytes < before[i]/2 && st.ValueLogLiveBytes <= st.ValueLogBytes
		})
		st := c.Nodes[i].Node.Status()
		t.Logf("%s: value log %d -> %d bytes, %d live", c.Nodes[i].ID, before[i], st.ValueLogBytes, st.ValueLogLiveBytes)
	}
	for _, oid := range oids[100:] {
		for i := range c.Nodes {
			if _, err := c.Client(i).GetBytes(ctxT(t), oid, api.One); err != nil {
				t.Fatalf("kept object via %s after collection: %v", c.Nodes[i].ID, err)
			}
		}
	}
}
