package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/tests/lincheck"
)

// chaosReport is what one seed did and found; it is printed and saved as
// JSON (docs/testing.md explains each field).
type chaosReport struct {
	Seed     int64   `json:"seed"`
	Nodes    int     `json:"nodes"`
	Duration string  `json:"duration"`
	Faults   []fault `json:"faults"`
	// ObjectWrites and ObjectReads are the object workload, RefOps the ref
	// reads and CAS transactions.
	ObjectWrites opCounts `json:"object_writes"`
	ObjectReads  opCounts `json:"object_reads"`
	RefOps       opCounts `json:"ref_ops"`
	LargeObjects int      `json:"large_objects_acknowledged"`
	// Lost, StaleReads and CorruptReads count violations; the Details show
	// the first few of each.
	Lost         int      `json:"lost"`
	StaleReads   int      `json:"stale_reads"`
	CorruptReads int      `json:"corrupt_reads"`
	Details      []string `json:"details,omitempty"`
	// Linearizable is the porcupine verdict on the ref history.
	Linearizable string `json:"linearizable"`
	// ConvergeSeconds is how long after healing every acknowledged object
	// had all its replicas; -1 if it had not within the bound.
	ConvergeSeconds float64  `json:"converge_s"`
	Failures        []string `json:"failures,omitempty"`
	Replay          string   `json:"replay"`
}

// refCounts counts the ref history's operations by outcome, a CAS conflict
// counting as acknowledged (the server answered with the current value).
func refCounts(ops []lincheck.Op) opCounts {
	var o opCounts
	for _, op := range ops {
		o.Attempted++
		switch op.Outcome {
		case lincheck.OK, lincheck.Conflict:
			o.Acknowledged++
		case lincheck.Failed:
			o.Failed++
		default:
			o.Unknown++
		}
	}
	return o
}

// addWorkloads counts what the workloads did and saw (after they stopped).
func (r *chaosReport) addWorkloads(l *objectLoad, ops []lincheck.Op) {
	r.ObjectWrites, r.ObjectReads, r.RefOps = l.writes, l.reads, refCounts(ops)
	r.LargeObjects = l.large
	r.StaleReads, r.CorruptReads = len(l.stale), len(l.corrupt)
	r.detail("stale", l.stale)
	r.detail("corrupt", l.corrupt)
	r.detail("unknown write", l.unknown)
}

// detail keeps the first few examples of a violation.
func (r *chaosReport) detail(what string, items []string) {
	for _, it := range items[:min(len(items), 5)] {
		r.Details = append(r.Details, what+": "+it)
	}
}

// judge fills Failures from the counts: each is a checker that fired.
func (r *chaosReport) judge() {
	check := func(bad bool, format string, args ...any) {
		if bad {
			r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
		}
	}
	check(r.Lost > 0, "%d acknowledged objects lost", r.Lost)
	check(r.StaleReads > 0, "%d stale reads (404 for an object acknowledged before the read began)", r.StaleReads)
	check(r.CorruptReads > 0, "%d corrupt reads", r.CorruptReads)
	check(r.Linearizable != "ok", "ref history: %s", r.Linearizable)
	check(r.ConvergeSeconds < 0, "objects did not all reach 3 replicas within %s of healing", convergeBound)
	check(r.ObjectWrites.Acknowledged < minAckedObjects, "only %d objects acknowledged: the workload did not run", r.ObjectWrites.Acknowledged)
	check(len(r.Faults) == 0, "no fault injected")
}

// minAckedObjects is the floor below which the object checkers prove nothing.
const minAckedObjects = 100

// finish prints the report, saves it under dir and fails the test with the
// replay command if a checker fired.
func (r *chaosReport) finish(t *testing.T, dir string) {
	t.Helper()
	r.Replay = fmt.Sprintf("make chaos SEEDS=%d DURATION=%s NODES=%d", r.Seed, r.Duration, r.Nodes)
	b, _ := json.MarshalIndent(r, "", "  ")
	path := filepath.Join(dir, fmt.Sprintf("chaos-seed-%d.json", r.Seed))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Errorf("saving the report: %v", err)
	}
	t.Logf("chaos report (%s):\n%s", path, b)
	t.Logf("chaos seed %d: %d faults; objects: %d writes (%d acked, %d failed, %d unknown), %d reads; refs: %d ops (%d unknown); lost %d, stale %d, corrupt %d; linearizable: %s; converged in %.1fs",
		r.Seed, len(r.Faults), r.ObjectWrites.Attempted, r.ObjectWrites.Acknowledged, r.ObjectWrites.Failed, r.ObjectWrites.Unknown,
		r.ObjectReads.Attempted, r.RefOps.Attempted, r.RefOps.Unknown, r.Lost, r.StaleReads, r.CorruptReads, r.Linearizable, r.ConvergeSeconds)
	if len(r.Failures) > 0 {
		t.Errorf("chaos seed %d FAILED:\n  %s\nreplay: %s", r.Seed, strings.Join(r.Failures, "\n  "), r.Replay)
	}
}

// reportDir is STRATUM_CHAOS_REPORT_DIR (created if needed) or a temporary
// directory.
func reportDir(t *testing.T) string {
	dir := os.Getenv("STRATUM_CHAOS_REPORT_DIR")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// convergeBound bounds how long after healing every acknowledged object
// may take to have a copy on each of its 3 owners (anti-entropy runs every
// 3s in the chaos cluster).
const convergeBound = 2 * time.Minute

// timeToConverge polls each node's own store until it holds every object
// the current ring makes it an owner of (on three nodes, every object),
// and returns the time from healed until then, or -1 past convergeBound
// (logging what is still missing where).
func timeToConverge(t *testing.T, c *procCluster, objects map[api.OID][]byte, healed time.Time) float64 {
	all := oidsOf(objects)
	missing := map[string]int{}
	for time.Since(healed) < convergeBound {
		clear(missing)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r, err := c.CP.LoadRing(ctx)
		cancel()
		if err != nil {
			missing["ring"] = -1
			time.Sleep(500 * time.Millisecond)
			continue
		}
		for _, n := range c.Nodes {
			var oids []api.OID
			for _, oid := range all {
				if r.Owns(n.ID, []byte(oid.String())) {
					oids = append(oids, oid)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			has, err := c.localHas(ctx, n, oids)
			cancel()
			if err != nil {
				missing[n.ID] = -1
				continue
			}
			for _, h := range has {
				if !h {
					missing[n.ID]++
				}
			}
		}
		if len(missing) == 0 {
			return time.Since(healed).Round(100 * time.Millisecond).Seconds()
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("after %s, objects missing per node (-1: the node did not answer): %v", convergeBound, missing)
	return -1
}

// summarize tabulates reports, one row per seed and a total row.
func summarize(reports []*chaosReport) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "seed\tfaults\twrites acked/attempted (unknown)\treads\tref ops (unknown)\tlost\tstale\tcorrupt\tlinearizable\tconverge_s")
	var total chaosReport
	faults, converge := 0, 0.0
	for _, r := range reports {
		fmt.Fprintf(w, "%d\t%d\t%d/%d (%d)\t%d\t%d (%d)\t%d\t%d\t%d\t%s\t%.1f\n", r.Seed, len(r.Faults), r.ObjectWrites.Acknowledged,
			r.ObjectWrites.Attempted, r.ObjectWrites.Unknown, r.ObjectReads.Attempted, r.RefOps.Attempted, r.RefOps.Unknown,
			r.Lost, r.StaleReads, r.CorruptReads, verdictWord(r.Linearizable), r.ConvergeSeconds)
		faults += len(r.Faults)
		total.ObjectWrites.Acknowledged += r.ObjectWrites.Acknowledged
		total.ObjectWrites.Attempted += r.ObjectWrites.Attempted
		total.ObjectWrites.Unknown += r.ObjectWrites.Unknown
		total.ObjectReads.Attempted += r.ObjectReads.Attempted
		total.RefOps.Attempted += r.RefOps.Attempted
		total.RefOps.Unknown += r.RefOps.Unknown
		total.Lost += r.Lost
		total.StaleReads += r.StaleReads
		total.CorruptReads += r.CorruptReads
		converge = max(converge, r.ConvergeSeconds)
	}
	fmt.Fprintf(w, "all\t%d\t%d/%d (%d)\t%d\t%d (%d)\t%d\t%d\t%d\t\tmax %.1f\n", faults, total.ObjectWrites.Acknowledged,
		total.ObjectWrites.Attempted, total.ObjectWrites.Unknown, total.ObjectReads.Attempted, total.RefOps.Attempted, total.RefOps.Unknown,
		total.Lost, total.StaleReads, total.CorruptReads, converge)
	w.Flush()
	return b.String()
}

// verdictWord shortens a linearizability verdict for a table.
func verdictWord(v string) string {
	if v == "ok" {
		return v
	}
	return "FAILED"
}
