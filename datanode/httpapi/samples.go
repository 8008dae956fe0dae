package httpapi

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/series"
	"github.com/stratum-store/stratum/internal/retry"
)

// SampleLoop samples until ctx is done: a goroutine owned by the node
// (stopped by Close) reads the totals every series.Every, and every node's
// /v1/status (bytes stored), asked with a one-second deadline.
func (n *Router) SampleLoop(ctx context.Context) {
	n.samples.Take(n.requestTotals(), nil, 0, 0)
	retry.Every(ctx, series.Every, func() {
		p := n.rep.Progress()
		n.samples.Take(n.requestTotals(), n.bytesPerNode(), p.Remaining, p.Copied)
	})
}

// requestTotals reads the object routes' request counts and latency
// histograms, and the 5xx count, from the node's registry.
func (n *Router) requestTotals() series.Totals {
	t := series.NewTotals(time.Now())
	families, err := n.metrics.Reg.Gather()
	if err != nil {
		return t
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			object := labels["route"] == api.PathObjects
			switch mf.GetName() {
			case "stratum_requests_total":
				v := m.GetCounter().GetValue()
				if code, _ := strconv.Atoi(labels["status"]); code >= 500 {
					t.Errors += v
				}
				if object && labels["method"] == "PUT" {
					t.Put += v
				} else if object && labels["method"] == "GET" {
					t.Get += v
				}
			case "stratum_request_seconds":
				into := map[string]map[float64]float64{"PUT": t.PutBuckets, "GET": t.GetBuckets}[labels["method"]]
				if !object || into == nil {
					continue
				}
				for _, b := range m.GetHistogram().GetBucket() {
					into[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				}
				into[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return t
}

// bytesPerNode asks every node of the ring for the bytes it stores.
func (n *Router) bytesPerNode() map[string]int64 {
	out := map[string]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ns := range cachedNodes(n.view()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, ok := n.PeerStatus(ns); ok {
				mu.Lock()
				out[ns.ID] = st.Bytes
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}
