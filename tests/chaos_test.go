package tests

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// TestChaos is the seeded fault-injection run (issue 9, docs/testing.md):
// per seed, a cluster of real stratum processes in network namespaces runs
// an object workload and the ref CAS workload while a nemesis drawn from
// the seed kills, pauses, partitions, slows and wipes nodes; after healing,
// checkers count lost, stale and corrupt objects, check the ref history
// with porcupine and time replica convergence.
//
// STRATUM_CHAOS_SEEDS ("1 2 3") and STRATUM_CHAOS_DURATION ("60s") choose
// the run; by default seed 1 runs for 20s, so `make test` covers it
// cheaply.
// `make chaos` and `make chaos-short` set them.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos runs take minutes; run without -short or with make chaos-short")
	}
	seeds, dur, nodes := chaosSettings(t)
	dir := reportDir(t)
	var reports []*chaosReport
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { reports = append(reports, runChaosSeed(t, seed, dur, nodes, dir)) })
	}
	t.Logf("chaos summary, %d seeds of %s:\n%s", len(reports), dur, summarize(reports))
}

// chaosSettings reads the seeds, the duration and the number of data
// nodes (STRATUM_CHAOS_NODES, 3 by default; 5 adds the majorities ring,
// drains and removals) from the environment.
func chaosSettings(t *testing.T) ([]int64, time.Duration, int) {
	nodes := 3
	if s := os.Getenv("STRATUM_CHAOS_NODES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 3 || n > 7 {
			t.Fatalf("STRATUM_CHAOS_NODES=%q: want 3 to 7 data nodes", s)
		}
		nodes = n
	}
	seedList, durText := os.Getenv("STRATUM_CHAOS_SEEDS"), os.Getenv("STRATUM_CHAOS_DURATION")
	if seedList == "" {
		seedList = "1"
	}
	if durText == "" {
		durText = "20s"
	}
	dur, err := time.ParseDuration(durText)
	if err != nil || dur < 10*time.Second || dur > time.Hour {
		t.Fatalf("STRATUM_CHAOS_DURATION=%q: want a duration from 10s to 1h (%v)", durText, err)
	}
	var seeds []int64
	for _, f := range strings.Fields(seedList) {
		s, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("STRATUM_CHAOS_SEEDS=%q: %q is not an integer", seedList, f)
		}
		seeds = append(seeds, s)
	}
	return seeds, dur, nodes
}

// chaosNodeArgs make repair fast enough to measure convergence in a test:
// anti-entropy every 3s (the default is 10 minutes), copying up to 5,000
// objects a second; and tombstones short-lived, so that a longer run sees
// them expire while copies move: kept 60s (the default is 7 days), hints
// 30s (it must be shorter).
var chaosNodeArgs = []string{"--anti-entropy-interval", "3s", "--anti-entropy-rate", "5000", "--hint-max-age", "30s", "--tombstone-grace", "60s"}

func runChaosSeed(t *testing.T, seed int64, dur time.Duration, nodes int, dir string) *chaosReport {
	t.Logf("chaos seed %d for %s on %d nodes; replay: make chaos SEEDS=%d DURATION=%s NODES=%d", seed, dur, nodes, seed, dur, nodes)
	lab := newNetLab(t)
	c := startNetClusterWith(t, lab, netClusterConfig{Nodes: nodes, Partitions: 8, NodeArgs: chaosNodeArgs, Proxied: true, Chaos: true})
	rep := &chaosReport{Seed: seed, Nodes: nodes, Duration: dur.String()}
	stopRefs, waitRefs, history := runLinWorkload(c, linKeys(), seed)
	objects := startObjectLoad(c, objectLoadConfig{Seed: seed, Writers: 2, Readers: 2, Level: api.Quorum, Mixed: true})
	nm := &chaosNemesis{t: t, c: c, lab: lab, rng: rand.New(rand.NewSource(seed)), begin: time.Now()}
	nm.run(dur)
	nm.healAll()
	healed := time.Now()
	available := objects.ackedAfter(healed, 30*time.Second)
	stopRefs()
	waitRefs()
	objects.stop()
	rep.Faults = nm.faults
	rep.addWorkloads(objects, history.Ops())
	rep.Linearizable = "ok"
	if v := linVerdict(t, history.Ops()); v != "" {
		rep.Linearizable = v
	}
	present, absent := objects.settled()
	rep.ConvergeSeconds = timeToConverge(t, c, present, absent, healed)
	lost := lostObjects(c, present)
	rep.Lost = len(lost)
	rep.detail("lost", lost)
	objects.readThrough(absent, true)
	rep.addHistory(objects.hist)
	if !available {
		rep.Failures = append(rep.Failures, "no object write acknowledged within 30s of healing")
	}
	rep.judge()
	rep.finish(t, dir)
	return rep
}

func oidsOf(objects map[api.OID][]byte) []api.OID {
	oids := make([]api.OID, 0, len(objects))
	for oid := range objects {
		oids = append(oids, oid)
	}
	return oids
}
