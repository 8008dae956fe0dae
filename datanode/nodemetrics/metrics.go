// Package nodemetrics holds a data node's Prometheus counters and
// histograms, in a registry of the node's own (no global registry: several
// nodes can share a process, as the tests run them). Every mechanism
// package counts into the Metrics it is given; the node registers its
// gauges, which read live state, next to them and serves the registry
// at GET /metrics (docs/operations.md lists every series).
package nodemetrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are one node's Prometheus metrics, in a registry of its own (no
// global registry: several nodes can share a process). GET /metrics serves
// them.
type Metrics struct {
	Reg               *prometheus.Registry // the node's own; the node adds its gauges to it
	Requests          *prometheus.CounterVec
	Latency           *prometheus.HistogramVec
	QuorumFailures    *prometheus.CounterVec
	ReplicaLatency    *prometheus.HistogramVec
	ReadRepairs       *prometheus.CounterVec
	Scrubbed          prometheus.Counter
	ScrubbedBytes     prometheus.Counter
	ScrubDamaged      prometheus.Counter
	ScrubRepaired     prometheus.Counter
	RefTxns           *prometheus.CounterVec
	HintsDelivered    prometheus.Counter
	AEObjects         *prometheus.CounterVec
	AERounds          prometheus.Counter
	Deletes           *prometheus.CounterVec
	TombstonesExpired prometheus.Counter
	ValueLogFreed     prometheus.Counter
	AEBytes           *prometheus.CounterVec
}

// New makes the counters and registers them, with the series alerts and
// the dashboard use already at 0.
func New() *Metrics {
	m := &Metrics{Reg: prometheus.NewRegistry()}
	m.Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stratum_requests_total", Help: "HTTP requests served, by route and status.",
	}, []string{"route", "method", "status"})
	m.Latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "stratum_request_seconds", Help: "HTTP request latency, by route.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
	}, []string{"route", "method"})
	m.QuorumFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stratum_quorum_failures_total", Help: "Coordinated requests answered 503 quorum_not_reached, by operation.",
	}, []string{"op"})
	m.ReplicaLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "stratum_replica_call_seconds", Help: "Latency of calls to peer replicas, by peer and outcome.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
	}, []string{"peer", "outcome"})
	m.ReadRepairs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stratum_read_repairs_total", Help: "Copies a read sent to replicas that lacked them, by outcome.",
	}, []string{"outcome"})
	m.Scrubbed = prometheus.NewCounter(prometheus.CounterOpts{Name: "stratum_scrub_checked_total", Help: "Local copies re-verified by the scrubber."})
	m.ScrubbedBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "stratum_scrub_checked_bytes_total", Help: "Bytes of the local copies the scrubber re-verified."})
	m.ScrubDamaged = prometheus.NewCounter(prometheus.CounterOpts{Name: "stratum_scrub_damaged_total", Help: "Damaged local copies the scrubber found and quarantined."})
	m.ScrubRepaired = prometheus.NewCounter(prometheus.CounterOpts{Name: "stratum_scrub_repaired_total", Help: "Damaged copies replaced from a verified replica."})
	m.RefTxns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stratum_ref_transactions_total", Help: "Ref transactions this node ran as primary, by outcome (ok, conflict, missing_object, unknown, refused).",
	}, []string{"outcome"})
	m.HintsDelivered = prometheus.NewCounter(prometheus.CounterOpts{Name: "stratum_hints_delivered_total", Help: "Hinted handoffs delivered to a replica that had missed a write."})
	m.AEObjects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stratum_antientropy_objects_total", Help: "Objects anti-entropy copied to (push) or from (pull) a peer.",
	}, []string{"direction"})
	m.Deletes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stratum_deletes_total", Help: "Object deletes coordinated by this node, by outcome (acked, failed)."}, []string{"outcome"})
	m.TombstonesExpired = prometheus.NewCounter(prometheus.CounterOpts{Name: "stratum_tombstones_expired_total", Help: "Tombstones removed after TombstoneGrace."})
	m.ValueLogFreed = prometheus.NewCounter(prometheus.CounterOpts{Name: "stratum_value_log_freed_bytes_total", Help: "Bytes of value log segments deleted by the collector."})
	m.AERounds = prometheus.NewCounter(prometheus.CounterOpts{Name: "stratum_antientropy_rounds_total", Help: "Anti-entropy rounds completed."})
	m.AEBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stratum_antientropy_bytes_total", Help: "Bytes of the objects anti-entropy (and so rebalancing and downtime recovery) copied, by direction.",
	}, []string{"direction"})
	// Series that alerts and the dashboard use exist from the start, at 0.
	for _, op := range []string{"put", "get", "delete"} {
		m.QuorumFailures.WithLabelValues(op)
	}
	for _, outcome := range []string{"ok", "conflict", "missing_object", "unknown", "refused"} {
		m.RefTxns.WithLabelValues(outcome)
	}
	for _, dir := range []string{"push", "pull"} {
		m.AEObjects.WithLabelValues(dir)
		m.AEBytes.WithLabelValues(dir)
	}
	m.Reg.MustRegister(m.Requests, m.Latency, m.QuorumFailures, m.ReplicaLatency, m.ReadRepairs, m.Scrubbed, m.ScrubDamaged, m.ScrubRepaired, m.RefTxns, m.HintsDelivered, m.AEObjects, m.AERounds, m.Deletes, m.TombstonesExpired, m.ValueLogFreed, m.AEBytes, m.ScrubbedBytes)
	return m
}

// Observe records one served request. The method label is bounded like
// the route: a method this server has no route for is "other".
func (m *Metrics) Observe(route, method string, status int, took time.Duration) {
	method = methodLabel(method)
	m.Requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.Latency.WithLabelValues(route, method).Observe(took.Seconds())
}

// methodLabel names a request method for metric labels: one of the
// methods routes serve, or "other" (anyone may send /healthz a made-up
// method, and each would otherwise be a new series).
func methodLabel(method string) string {
	switch method {
	case "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS":
		return method
	}
	return "other"
}
