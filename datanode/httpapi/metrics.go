package httpapi

import (
	"slices"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/stratum-store/stratum/datanode/breaker"
	"github.com/stratum-store/stratum/datanode/nodemetrics"
)

// metrics are the node's counters (package nodemetrics) and the handler
// that serves them with the gauges newMetrics adds.
type metrics struct {
	*nodemetrics.Metrics
	handler fasthttp.RequestHandler
}

func newMetrics(n *Router) *metrics {
	m := &metrics{Metrics: n.d.Metrics}
	m.Reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stratum_hints_expired_total", Help: "Hints dropped undelivered because they reached their maximum age."},
			func() float64 { return float64(n.hints.Expired()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stratum_hints_dropped_total", Help: "Hints not recorded because their peer had the maximum number queued."},
			func() float64 { return float64(n.hints.Dropped()) }))
	if pc := n.d.PackCache; pc != nil {
		stat := func(i int) func() float64 {
			return func() float64 { h, m, b := pc.Stats(); return float64([3]int64{h, m, b}[i]) }
		}
		m.Reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stratum_git_pack_cache_hits_total", Help: "Full clones served from the pack cache."}, stat(0)),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stratum_git_pack_cache_misses_total", Help: "Full clones that wrote their pack (and filled the cache)."}, stat(1)),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "stratum_git_pack_cache_bytes", Help: "Bytes of packs in the pack cache."}, stat(2)))
	}
	gauge := func(name, help string, f func() float64) {
		m.Reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("stratum_ring_revision", "Revision of the ring this node uses.", func() float64 {
		if r := n.Ring(); r != nil {
			return float64(r.Revision())
		}
		return 0
	})
	gauge("stratum_store_objects", "Objects in this node's store.", func() float64 { return float64(n.store.Stats().Objects) })
	gauge("stratum_store_bytes", "Logical bytes in this node's store.", func() float64 { return float64(n.store.Stats().Bytes) })
	gauge("stratum_body_memory_bytes", "Request bodies held in memory.", func() float64 { return float64(n.bodies.Used()) })
	gauge("stratum_etcd_session_up", "1 while the node's registration lease is alive.", func() float64 { return b2f(n.ControlPlaneOK()) })
	gauge("stratum_partitions_led", "Partitions whose record names this node primary.", func() float64 { return float64(len(n.refs.Led())) })
	gauge("stratum_partitions_serving", "Partitions this node serves as primary now.", func() float64 { return float64(n.refs.ServingCount()) })
	gauge("stratum_hints_pending", "Hinted handoffs queued on this node.", func() float64 { return float64(n.hints.Pending()) })
	gauge("stratum_fenced", "1 once this generation is fenced.", func() float64 { return b2f(n.Fenced()) })
	gauge("stratum_under_replicated_objects", "Objects the current or last anti-entropy round of this node found missing on it or a peer and has not copied yet.",
		func() float64 { return float64(n.rep.Progress().Remaining) })
	gauge("stratum_repair_paused", "1 while repair and rebalancing are paused cluster-wide.", func() float64 { return b2f(n.rep.Paused()) })
	gauge("stratum_partitions", "Ref partitions in the cluster (0 before the planner wrote the configuration).", func() float64 {
		if cfg := n.refs.Layout(); cfg != nil {
			return float64(cfg.Count)
		}
		return 0
	})
	gauge("stratum_disk_free_bytes", "Bytes free to this process on the data directory's filesystem.", func() float64 { return float64(diskSpace(n.cfg.Store.Dir).free) })
	gauge("stratum_disk_size_bytes", "Size of the data directory's filesystem.", func() float64 { return float64(diskSpace(n.cfg.Store.Dir).size) })
	m.Reg.MustRegister(breakerCollector{n})
	if src, ok := n.d.Control.(BadRecordSource); ok {
		m.Reg.MustRegister(badRecordCollector{src})
	}
	m.handler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.Reg, promhttp.HandlerOpts{}))
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// breakerCollector exports each peer's circuit-breaker state
// (0 closed, 1 half-open, 2 open) at scrape time.
type breakerCollector struct{ n *Router }

var breakerDesc = prometheus.NewDesc("stratum_peer_breaker_state", "Circuit breaker per peer: 0 closed, 1 half-open, 2 open.", []string{"peer"}, nil)

func (c breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- breakerDesc }

func (c breakerCollector) Collect(ch chan<- prometheus.Metric) {
	if c.n.peers == nil {
		return
	}
	for _, b := range c.n.peers.States() {
		v := map[string]float64{breaker.Closed: 0, breaker.HalfOpen: 1, breaker.Open: 2}[b.State]
		ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, v, b.Peer)
	}
}

type diskUsage struct{ free, size uint64 }

// diskSpace reads the filesystem of dir (zero when it cannot).
func diskSpace(dir string) diskUsage {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return diskUsage{}
	}
	return diskUsage{free: st.Bavail * uint64(st.Bsize), size: st.Blocks * uint64(st.Bsize)}
}

// BadRecordSource is what a ControlPlane may also offer: how many records
// under each key prefix it skipped because they did not decode or named
// another ID than their key (docs/security.md). A node whose control plane
// offers it exports stratum_controlplane_bad_records_total{prefix}.
type BadRecordSource interface {
	BadRecords() map[string]uint64
}

// badRecordPrefixes are the prefixes whose series exist from the start.
var badRecordPrefixes = []string{"nodes", "members", "joins", "partitions", "tokens"}

var badRecordsDesc = prometheus.NewDesc("stratum_controlplane_bad_records_total",
	"Control-plane records skipped (undecodable, or naming another ID than their key), by key prefix.", []string{"prefix"}, nil)

// badRecordCollector exports a BadRecordSource at scrape time.
type badRecordCollector struct{ src BadRecordSource }

func (c badRecordCollector) Describe(ch chan<- *prometheus.Desc) { ch <- badRecordsDesc }

func (c badRecordCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.src.BadRecords()
	for _, p := range badRecordPrefixes {
		ch <- prometheus.MustNewConstMetric(badRecordsDesc, prometheus.CounterValue, float64(counts[p]), p)
	}
	for p, v := range counts {
		if !slices.Contains(badRecordPrefixes, p) {
			ch <- prometheus.MustNewConstMetric(badRecordsDesc, prometheus.CounterValue, float64(v), p)
		}
	}
}
