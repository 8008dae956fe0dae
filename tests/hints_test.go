package tests

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

// putMany writes count distinct objects through node i at level and
// returns their OIDs and contents.
func putMany(t *testing.T, c *Cluster, i, count int, level api.Consistency) map[api.OID][]byte {
	t.Helper()
	objs := map[api.OID][]byte{}
	for k := 0; k < count; k++ {
		data := []byte(fmt.Sprintf("hinted handoff object %d of %s", k, t.Name()))
		rec, err := c.Client(i).PutBytes(ctxT(t), data, api.SHA1, level)
		if err != nil {
			t.Fatalf("put %d: %v", k, err)
		}
		if len(rec.Acked) < level.Required(3) {
			t.Fatalf("put %d: acked by %v; want at least %d", k, rec.Acked, level.Required(3))
		}
		oid, _ := api.ParseOID(rec.OID)
		objs[oid] = data
	}
	return objs
}

func status(t *testing.T, c *Cluster, i int) api.StatusDoc {
	t.Helper()
	st, err := c.Client(i).Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestHintsDeliveredWhenReplicaReturns(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) { cfg.HintInterval = 100 * time.Millisecond })
	c.StopNode(2)
	objs := putMany(t, c, 0, 30, api.Quorum)
	// Every object has n3 among its 3 replicas, so n1 holds one hint each
	// (some are recorded after the acknowledgement, when n3's call fails).
	Eventually(t, 20*time.Second, "n1 holds 30 hints", func() bool { return status(t, c, 0).HintsPending == 30 })
	if got := metric(t, c, 0, "stratum_hints_pending"); got != 30 {
		t.Fatalf("stratum_hints_pending = %v; want 30", got)
	}
	if page := getBody(t, c.URL(0)+"/ui/"); !strings.Contains(page, `<td id="hints" class="bad">30 (`) {
		t.Fatalf("status page does not show the 30 pending hints:\n%s", page)
	}

	c.StartNode(2)
	// No client reads any object: only the handoff can bring them to n3.
	Eventually(t, 30*time.Second, "n3 holds all 30 objects", func() bool { return c.Nodes[2].Node.Status().Objects == 30 })
	Eventually(t, 10*time.Second, "n1's hints drained", func() bool { return status(t, c, 0).HintsPending == 0 })
	if got := metric(t, c, 0, "stratum_hints_delivered_total"); got != 30 {
		t.Fatalf("stratum_hints_delivered_total = %v; want 30", got)
	}
	for oid, want := range objs { // n3 reads its own copy first at level one
		got, err := c.Client(2).GetBytes(ctxT(t), oid, api.One)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("GET %s from n3 at one: %q, %v; want %q", oid, got, err, want)
		}
	}
}

func TestHintsExpireAndAreCounted(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.HintInterval, cfg.HintMaxAge = 50*time.Millisecond, 300*time.Millisecond
	})
	c.StopNode(2)
	putMany(t, c, 0, 10, api.Quorum)
	Eventually(t, 20*time.Second, "n1's 10 hints expired", func() bool {
		st := status(t, c, 0)
		return st.HintsExpired == 10 && st.HintsPending == 0
	})
	if got := metric(t, c, 0, "stratum_hints_expired_total"); got != 10 {
		t.Fatalf("stratum_hints_expired_total = %v; want 10", got)
	}
	if got := status(t, c, 0).HintsDropped; got != 0 {
		t.Fatalf("hints_dropped = %d; want 0", got)
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
