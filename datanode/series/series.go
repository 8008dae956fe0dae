// Package series keeps the time series the status page charts: request
// rates, p99 latencies, errors, bytes per node and repair progress over
// the last Window.
//
// The node reads cumulative totals (request counts and latency histograms
// from its own Prometheus registry, so the request path pays nothing
// extra) every Every and hands them to a Sampler, which turns each pair
// of successive totals into one Sample of per-second rates and keeps the
// last Window of them in a fixed-size Ring: the memory they take is
// bounded however long the node runs.
//
// # Caveats
//
// A p99 is the upper bound of a histogram bucket, not an exact quantile:
// it is only as fine as the buckets. Counters that went down (a registry
// reset) give negative rates for one sample.
package series

import (
	"math"
	"sync"
	"time"
)

// Every is the interval between samples, and Window the span the Ring
// keeps.
const (
	Every  = 5 * time.Second
	Window = 15 * time.Minute
)

// Sample is one point of the charts. Rates are per second over the
// interval since the previous sample; a p99 is 0 when no request of its
// kind was served in the interval.
type Sample struct {
	At               time.Time
	PutRate, GetRate float64
	PutP99, GetP99   float64 // seconds, the upper bound of the bucket holding the 99th percentile
	Errors           float64 // 5xx answers per second, every route
	Bytes            map[string]int64
	RepairRemaining  int64
	RepairCopied     int64
}

// Ring holds the last len(buf) samples.
type Ring struct {
	mu   sync.Mutex
	buf  []Sample
	next int
	n    int
}

// NewRing returns a ring that keeps the last size samples.
func NewRing(size int) *Ring { return &Ring{buf: make([]Sample, size)} }

// Add appends s, dropping the oldest sample when the ring is full.
func (r *Ring) Add(s Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// List returns the samples, oldest first.
func (r *Ring) List() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Sample, 0, r.n)
	for i := 0; i < r.n; i++ {
		out = append(out, r.buf[(r.next-r.n+i+len(r.buf))%len(r.buf)])
	}
	return out
}

// Totals are the cumulative figures a sample is the difference of: the
// object routes' PUT and GET counts and latency histograms, and the 5xx
// answers of every route.
type Totals struct {
	At         time.Time
	Put, Get   float64
	Errors     float64
	PutBuckets map[float64]float64 // upper bound -> cumulative count; +Inf holds the total
	GetBuckets map[float64]float64
}

// NewTotals returns empty totals read at at, ready to be added to.
func NewTotals(at time.Time) Totals {
	return Totals{At: at, PutBuckets: map[float64]float64{}, GetBuckets: map[float64]float64{}}
}

// Sampler turns successive totals into samples. It is not safe for
// concurrent use: one goroutine takes the samples (its Ring is).
type Sampler struct {
	ring *Ring
	prev *Totals
}

// NewSampler returns a sampler whose ring keeps Window of samples taken
// every Every.
func NewSampler() *Sampler {
	return &Sampler{ring: NewRing(int(Window / Every))}
}

// Ring is the samples taken so far.
func (s *Sampler) Ring() *Ring { return s.ring }

// Take records the sample between the previous totals and cur, with the
// bytes each node stores and the repair's remaining and copied counts as
// they are now. The first call only keeps cur.
func (s *Sampler) Take(cur Totals, bytes map[string]int64, repairRemaining, repairCopied int64) {
	prev := s.prev
	s.prev = &cur
	if prev == nil {
		return
	}
	secs := cur.At.Sub(prev.At).Seconds()
	if secs <= 0 {
		return
	}
	s.ring.Add(Sample{
		At:      cur.At,
		PutRate: (cur.Put - prev.Put) / secs, GetRate: (cur.Get - prev.Get) / secs,
		PutP99: P99(prev.PutBuckets, cur.PutBuckets), GetP99: P99(prev.GetBuckets, cur.GetBuckets),
		Errors: (cur.Errors - prev.Errors) / secs,
		Bytes:  bytes, RepairRemaining: repairRemaining, RepairCopied: repairCopied,
	})
}

// P99 is the upper bound of the first bucket whose count since prev holds
// 99 % of the requests since prev (0 with none; the largest finite bound
// when the percentile is beyond it).
func P99(prev, cur map[float64]float64) float64 {
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
