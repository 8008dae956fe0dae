package datanode

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/stratum-store/stratum/api"
)

// The status page's charts: a goroutine owned by the node (stopped by
// Close) takes a sample every sampleEvery and keeps the last sampleWindow
// of them in a fixed-size ring, so the memory they take is bounded. A
// sample is read from the node's own Prometheus registry (request counts
// and latency histograms, so the request path pays nothing extra) and from
// every node's /v1/status (bytes stored), asked with a one-second deadline.
const (
	sampleEvery  = 5 * time.Second
	sampleWindow = 15 * time.Minute
)

// sample is one point of the charts. Rates are per second over the
// interval since the previous sample; a p99 is 0 when no request of its
// kind was served in the interval.
type sample struct {
	At               time.Time
	PutRate, GetRate float64
	PutP99, GetP99   float64 // seconds, the upper bound of the bucket holding the 99th percentile
	Errors           float64 // 5xx answers per second, every route
	Bytes            map[string]int64
	RepairRemaining  int64
	RepairCopied     int64
}

// sampleRing holds the last len(buf) samples.
type sampleRing struct {
	mu   sync.Mutex
	buf  []sample
	next int
	n    int
}

func newSampleRing(size int) *sampleRing { return &sampleRing{buf: make([]sample, size)} }

func (r *sampleRing) add(s sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// list returns the samples, oldest first.
func (r *sampleRing) list() []sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]sample, 0, r.n)
	for i := 0; i < r.n; i++ {
		out = append(out, r.buf[(r.next-r.n+i+len(r.buf))%len(r.buf)])
	}
	return out
}

// requestTotals are the cumulative figures a sample is the difference of.
type requestTotals struct {
	at         time.Time
	put, get   float64
	errors     float64
	putBuckets map[float64]float64 // upper bound -> cumulative count
	getBuckets map[float64]float64
}

// sampler turns successive totals into samples.
type sampler struct {
	ring *sampleRing
	prev *requestTotals
}

func newSampler() *sampler {
	return &sampler{ring: newSampleRing(int(sampleWindow / sampleEvery))}
}

// sampleLoop samples until ctx is done.
func (n *Node) sampleLoop(ctx context.Context) {
	n.samples.take(n.requestTotals(), nil, api.RepairProgress{})
	every(ctx, sampleEvery, func() {
		n.samples.take(n.requestTotals(), n.bytesPerNode(), n.repair.progress())
	})
}

// take records the sample between the previous totals and cur.
func (s *sampler) take(cur requestTotals, bytes map[string]int64, repair api.RepairProgress) {
	prev := s.prev
	s.prev = &cur
	if prev == nil {
		return
	}
	secs := cur.at.Sub(prev.at).Seconds()
	if secs <= 0 {
		return
	}
	s.ring.add(sample{
		At:      cur.at,
		PutRate: (cur.put - prev.put) / secs, GetRate: (cur.get - prev.get) / secs,
		PutP99: p99(prev.putBuckets, cur.putBuckets), GetP99: p99(prev.getBuckets, cur.getBuckets),
		Errors: (cur.errors - prev.errors) / secs,
		Bytes:  bytes, RepairRemaining: repair.Remaining, RepairCopied: repair.Copied,
	})
}

// p99 is the upper bound of the first bucket whose count since prev holds
// 99 % of the requests since prev (0 with none; the largest finite bound
// when the percentile is beyond it).
func p99(prev, cur map[float64]float64) float64 {
	total := cur[math.Inf(1)] - prev[math.Inf(1)]
	if total <= 0 {
		return 0
	}
	best, largest := math.Inf(1), 0.0
	for le, c := range cur {
		if !math.IsInf(le, 1) {
			largest = max(largest, le)
		}
		if c-prev[le] >= 0.99*total && le < best {
			best = le
		}
	}
	if math.IsInf(best, 1) {
		return largest
	}
	return best
}

// requestTotals reads the object routes' request counts and latency
// histograms, and the 5xx count, from the node's registry.
func (n *Node) requestTotals() requestTotals {
	t := requestTotals{at: time.Now(), putBuckets: map[float64]float64{}, getBuckets: map[float64]float64{}}
	families, err := n.metrics.reg.Gather()
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
					t.errors += v
				}
				if object && labels["method"] == "PUT" {
					t.put += v
				} else if object && labels["method"] == "GET" {
					t.get += v
				}
			case "stratum_request_seconds":
				into := map[string]map[float64]float64{"PUT": t.putBuckets, "GET": t.getBuckets}[labels["method"]]
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
func (n *Node) bytesPerNode() map[string]int64 {
	out := map[string]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ns := range cachedNodes(n.view.Load()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, ok := n.peerStatus(ns); ok {
				mu.Lock()
				out[ns.ID] = st.Bytes
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}
