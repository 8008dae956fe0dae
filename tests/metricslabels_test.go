package tests

import (
	"fmt"
	"regexp"
	"testing"
)

// requestSeries counts the stratum_requests_total series node i exports.
func requestSeries(t *testing.T, c *Cluster, i int) int {
	t.Helper()
	status, body := rawRequest(t, c.Nodes[i].Addr, "GET", "/metrics", nil)
	if status != 200 {
		t.Fatalf("GET /metrics: %d; want 200", status)
	}
	return len(regexp.MustCompile(`(?m)^stratum_requests_total\{`).FindAll(body, -1))
}

// Made-up methods and paths, which /healthz and /readyz take without a
// token, are labelled "other": a client cannot grow the metric series
// without bound (issue 21.6).
func TestMetricLabelsStayBounded(t *testing.T) {
	c := MustStartCluster(t, 1, nil)
	addr := c.Nodes[0].Addr
	junk := func(k int) {
		rawRequest(t, addr, fmt.Sprintf("FOO%d", k), "/healthz", nil)
		rawRequest(t, addr, fmt.Sprintf("BAR%d", k), "/readyz", nil)
		rawRequest(t, addr, "GET", fmt.Sprintf("/made/up/%d", k), nil)
		rawRequest(t, addr, fmt.Sprintf("BAZ%d", k), fmt.Sprintf("/v1/made-up-%d", k), nil)
	}
	junk(0)                // the "other" series exist from here on
	requestSeries(t, c, 0) // and so does GET /metrics's own
	before := requestSeries(t, c, 0)
	for k := 1; k <= 50; k++ {
		junk(k)
	}
	if after := requestSeries(t, c, 0); after != before {
		t.Fatalf("stratum_requests_total series after 200 requests with made-up methods and paths: got %d; want %d (as before them)", after, before)
	}
}
