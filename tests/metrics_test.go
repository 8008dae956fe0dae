package tests

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// metric returns the value of the sample whose name and labels match the
// regexp prefix in node i's /metrics, or -1.
func metric(t *testing.T, c *Cluster, i int, sample string) float64 {
	t.Helper()
	status, body := rawRequest(t, c.Nodes[i].Addr, "GET", "/metrics", nil)
	if status != 200 {
		t.Fatalf("GET /metrics: %d", status)
	}
	m := regexp.MustCompile(`(?m)^` + sample + ` ([0-9.e+-]+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	puts := `stratum_requests_total\{method="PUT",route="/v1/objects/",status="201"\}`
	if v := metric(t, c, 0, puts); v > 0 {
		t.Fatalf("PUT counter before any PUT: %v", v)
	}
	for i := 0; i < 5; i++ {
		if _, err := c.Client(0).PutBytes(ctxT(t), []byte(fmt.Sprint("metric ", i)), api.SHA256, api.Quorum); err != nil {
			t.Fatal(err)
		}
	}
	if v := metric(t, c, 0, puts); v != 5 {
		t.Fatalf("PUT counter after 5 PUTs: %v; want 5", v)
	}
	if v := metric(t, c, 0, `stratum_ring_revision`); v != float64(c.Nodes[0].Node.Ring().Revision()) {
		t.Fatalf("ring revision gauge %v; want %d", v, c.Nodes[0].Node.Ring().Revision())
	}
	Eventually(t, 10*time.Second, "n2's store gauge counts the 5 objects", func() bool {
		return metric(t, c, 1, `stratum_store_objects`) == 5
	})
	if v := metric(t, c, 0, `stratum_etcd_session_up`); v != 1 {
		t.Fatalf("etcd session gauge %v; want 1", v)
	}
	c.StopNode(2)
	if _, err := c.Client(0).PutBytes(ctxT(t), []byte("needs all"), api.SHA256, api.All); err == nil {
		t.Fatal("put at all with a node stopped succeeded")
	}
	if v := metric(t, c, 0, `stratum_quorum_failures_total\{op="put"\}`); v != 1 {
		t.Fatalf("quorum failures after one failed put: %v; want 1", v)
	}
	if v := metric(t, c, 0, `stratum_replica_call_seconds_count\{outcome="transport",peer="`+regexp.QuoteMeta(c.Nodes[2].Addr)+`"\}`); v < 1 {
		t.Fatalf("transport failures to the stopped peer: %v; want >= 1", v)
	}
}

// The status page renders the cluster's nodes and their states.
func TestStatusPageShowsNodes(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	status, body := rawRequest(t, c.Nodes[1].Addr, "GET", "/ui/", nil)
	page := string(body)
	if status != 200 || strings.Count(page, `<tr class="node">`) != 3 || !strings.Contains(page, "stratum node n2") {
		t.Fatalf("/ui/: %d\n%s", status, page)
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		if !strings.Contains(page, "<td>"+id+"</td>") {
			t.Fatalf("/ui/ does not list %s", id)
		}
	}
}

// TestBadControlPlaneRecordsAreCounted: a record that does not decode is
// skipped by every reader and shows in each node's
// stratum_controlplane_bad_records_total, while the node keeps serving.
func TestBadControlPlaneRecordsAreCounted(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	sample := `stratum_controlplane_bad_records_total\{prefix="members"\}`
	if v := metric(t, c, 0, sample); v != 0 {
		t.Fatalf("%s before any bad record: %v; want 0 (the series exists from the start)", sample, v)
	}
	if _, err := c.CP.Etcd().Put(ctxT(t), "/stratum/members/zz", "{not json"); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 15*time.Second, "the bad member record counted in /metrics", func() bool {
		return metric(t, c, 0, sample) >= 1
	})
	if _, err := c.Client(1).PutBytes(ctxT(t), []byte("still serving"), api.SHA256, api.Quorum); err != nil {
		t.Fatalf("put after a bad record: %v", err)
	}
}
