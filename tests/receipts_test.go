package tests

import (
	"slices"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// TestReceiptsSayWhatHappened: in a healthy three-node cluster a quorum PUT
// is not degraded (the replica still writing is listed as pending); with a
// node stopped, the write skips it and says so (failed, degraded). The same
// holds for batch receipts, which reply once every replica answered.
func TestReceiptsSayWhatHappened(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	ctx := ctxT(t)
	for i := range 20 {
		rec, err := c.Client(i%3).PutBytes(ctx, randomBytes(int64(1000+i), 512), api.SHA256, api.Quorum)
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		if rec.Degraded || len(rec.Failed) != 0 || len(rec.Acked)+len(rec.Pending) != 3 || len(rec.Acked) < 2 {
			t.Fatalf("put %d in a healthy cluster: receipt %+v; want not degraded, nothing failed, acked+pending = 3, acked >= 2", i, rec)
		}
	}
	reply, err := c.Client(0).PutBatch(ctx, batchObjects(t, 10, "healthy"), api.Quorum)
	if err != nil || reply.Stored != 10 {
		t.Fatalf("batch put in a healthy cluster: %+v, %v; want 10 stored", reply, err)
	}
	for _, it := range reply.Items {
		if it.Degraded || len(it.Acked) != 3 || len(it.Failed) != 0 {
			t.Fatalf("batch item in a healthy cluster: %+v; want 3 acked, none failed, not degraded", it)
		}
	}

	c.StopNode(2)
	stopped := c.Nodes[2].ID
	var last api.Receipt
	Eventually(t, 15*time.Second, "a quorum put that skips the stopped node", func() bool {
		last, err = c.Client(0).PutBytes(ctx, []byte(time.Now().String()), api.SHA256, api.Quorum)
		return err == nil && slices.Contains(last.Failed, stopped)
	})
	if !last.Degraded || slices.Contains(last.Acked, stopped) || slices.Contains(last.Pending, stopped) {
		t.Fatalf("put with %s stopped: receipt %+v; want degraded, %s in failed only", stopped, last, stopped)
	}
	reply, err = c.Client(0).PutBatch(ctx, batchObjects(t, 10, "one-stopped"), api.Quorum)
	if err != nil || reply.Stored != 10 {
		t.Fatalf("batch put with %s stopped: %+v, %v; want 10 stored", stopped, reply, err)
	}
	for _, it := range reply.Items {
		if !it.Degraded || len(it.Acked) != 2 || !slices.Equal(it.Failed, []string{stopped}) {
			t.Fatalf("batch item with %s stopped: %+v; want 2 acked, failed [%s], degraded", stopped, it, stopped)
		}
	}
}
