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
	// ObjectWrites and ObjectReads are the object workload's single puts
	// (LargePuts those above 1 MiB) and gets, BatchPuts and BatchReads its
	// batch requests, Deletes its deletes; RefOps the ref reads and CAS
	// transactions.
	ObjectWrites opCounts `json:"object_writes"`
	LargePuts    opCounts `json:"large_puts"`
	BatchPuts    opCounts `json:"batch_puts"`
	Deletes      opCounts `json:"deletes"`
	ObjectReads  opCounts `json:"object_reads"`
	BatchReads   opCounts `json:"batch_reads"`
	RefOps       opCounts `json:"ref_ops"`
	LargeObjects int      `json:"large_objects_acknowledged"`
	// PutsAgain counts acknowledged puts of deleted objects; JudgedReads
	// the reads (final ones included) whose answer the history decided, of
	// which AbsentReads had to find nothing (docs/testing.md, "No
	// resurrection").
	PutsAgain   int `json:"puts_again_acknowledged"`
	JudgedReads int `json:"judged_reads"`
	AbsentReads int `json:"absent_reads"`
	// Lost, StaleReads, Resurrected and CorruptReads count violations; the
	// Details show the first few of each.
	Lost         int      `json:"lost"`
	StaleReads   int      `json:"stale_reads"`
	Resurrected  int      `json:"resurrected"`
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
	r.LargePuts, r.BatchPuts, r.Deletes, r.BatchReads = l.largePuts, l.batchPuts, l.deletes, l.batchReads
	r.LargeObjects, r.PutsAgain = l.large, l.putsAgain
	r.CorruptReads = len(l.corrupt)
	r.detail("corrupt", l.corrupt)
	r.detail("unknown write", l.unknown)
}

// addHistory judges every read of the object history (after the final
// reads).
func (r *chaosReport) addHistory(h *objHistory) {
	v := h.check()
	r.JudgedReads, r.AbsentReads = v.Judged, v.Absent
	r.StaleReads, r.Resurrected = len(v.Stale), len(v.Resurrected)
	r.detail("stale", v.Stale)
	r.detail("resurrected", v.Resurrected)
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
	check(r.StaleReads > 0, "%d stale reads (404 for an object that must exist: docs/testing.md, \"No resurrection\")", r.StaleReads)
	check(r.Resurrected > 0, "%d reads found an object deleted before they began", r.Resurrected)
	check(r.CorruptReads > 0, "%d corrupt reads", r.CorruptReads)
	check(r.Linearizable != "ok", "ref history: %s", r.Linearizable)
	check(r.ConvergeSeconds < 0, "objects did not all reach 3 replicas, or deleted ones leave their owners, within %s of healing", convergeBound)
	check(r.ObjectWrites.Acknowledged < minAckedObjects, "only %d objects acknowledged: the workload did not run", r.ObjectWrites.Acknowledged)
	check(r.Deletes.Acknowledged < minAckedDeletes, "only %d deletes acknowledged: the no-resurrection checker proves nothing", r.Deletes.Acknowledged)
	check(len(r.Faults) == 0, "no fault injected")
}

// minAckedObjects and minAckedDeletes are the floors below which the
// object checkers prove nothing.
const (
	minAckedObjects = 100
	minAckedDeletes = 20
)

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
	t.Logf("chaos seed %d: %d faults; objects: %d puts (%d acked, %d failed, %d unknown; %d large), %d batch puts, %d deletes (%d acked), %d reads, %d batch reads; refs: %d ops (%d unknown); lost %d, stale %d, resurrected %d (of %d reads that had to find nothing), corrupt %d; linearizable: %s; converged in %.1fs",
		r.Seed, len(r.Faults), r.ObjectWrites.Attempted, r.ObjectWrites.Acknowledged, r.ObjectWrites.Failed, r.ObjectWrites.Unknown, r.LargePuts.Attempted,
		r.BatchPuts.Attempted, r.Deletes.Attempted, r.Deletes.Acknowledged, r.ObjectReads.Attempted, r.BatchReads.Attempted, r.RefOps.Attempted, r.RefOps.Unknown,
		r.Lost, r.StaleReads, r.Resurrected, r.AbsentReads, r.CorruptReads, r.Linearizable, r.ConvergeSeconds)
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
// of present the current ring makes it an owner of (on three nodes, every
// object) and no copy of any object of absent it owns (a tombstone or
// nothing), and returns the time from healed until then, or -1 past
// convergeBound (logging what is still wrong where).
func timeToConverge(t *testing.T, c *procCluster, present map[api.OID][]byte, absent []api.OID, healed time.Time) float64 {
	all := oidsOf(present)
	wrong := map[string]int{}
	for time.Since(healed) < convergeBound {
		clear(wrong)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r, err := c.CP.LoadRing(ctx)
		cancel()
		if err != nil {
			wrong["ring"] = -1
			time.Sleep(500 * time.Millisecond)
			continue
		}
		for _, n := range c.Nodes {
			owned := func(oids []api.OID) []api.OID {
				var out []api.OID
				for _, oid := range oids {
					if r.Owns(n.ID, []byte(oid.String())) {
						out = append(out, oid)
					}
				}
				return out
			}
			want, gone := owned(all), owned(absent)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			has, err := c.localHas(ctx, n, append(want, gone...))
			cancel()
			if err != nil {
				wrong[n.ID] = -1
				continue
			}
			for i, h := range has {
				switch {
				case i < len(want) && !h:
					wrong[n.ID+" missing"]++
				case i >= len(want) && h:
					wrong[n.ID+" holds deleted"]++
				}
			}
		}
		if len(wrong) == 0 {
			return time.Since(healed).Round(100 * time.Millisecond).Seconds()
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("after %s, objects missing and copies of deleted objects held per node (-1: the node did not answer): %v", convergeBound, wrong)
	return -1
}

// summarize tabulates reports, one row per seed and a total row.
func summarize(reports []*chaosReport) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "seed\tfaults\twrites acked/attempted (unknown)\tbatch puts\tdeletes acked\treads\tref ops (unknown)\tlost\tstale\tresurrected\tcorrupt\tlinearizable\tconverge_s")
	var total chaosReport
	faults, converge := 0, 0.0
	for _, r := range reports {
		fmt.Fprintf(w, "%d\t%d\t%d/%d (%d)\t%d\t%d\t%d\t%d (%d)\t%d\t%d\t%d\t%d\t%s\t%.1f\n", r.Seed, len(r.Faults), r.ObjectWrites.Acknowledged,
			r.ObjectWrites.Attempted, r.ObjectWrites.Unknown, r.BatchPuts.Attempted, r.Deletes.Acknowledged, r.ObjectReads.Attempted, r.RefOps.Attempted, r.RefOps.Unknown,
			r.Lost, r.StaleReads, r.Resurrected, r.CorruptReads, verdictWord(r.Linearizable), r.ConvergeSeconds)
		faults += len(r.Faults)
		total.ObjectWrites.Acknowledged += r.ObjectWrites.Acknowledged
		total.ObjectWrites.Attempted += r.ObjectWrites.Attempted
		total.ObjectWrites.Unknown += r.ObjectWrites.Unknown
		total.ObjectReads.Attempted += r.ObjectReads.Attempted
		total.RefOps.Attempted += r.RefOps.Attempted
		total.RefOps.Unknown += r.RefOps.Unknown
		total.BatchPuts.Attempted += r.BatchPuts.Attempted
		total.Deletes.Acknowledged += r.Deletes.Acknowledged
		total.Lost += r.Lost
		total.StaleReads += r.StaleReads
		total.Resurrected += r.Resurrected
		total.CorruptReads += r.CorruptReads
		converge = max(converge, r.ConvergeSeconds)
	}
	fmt.Fprintf(w, "all\t%d\t%d/%d (%d)\t%d\t%d\t%d\t%d (%d)\t%d\t%d\t%d\t%d\t\tmax %.1f\n", faults, total.ObjectWrites.Acknowledged,
		total.ObjectWrites.Attempted, total.ObjectWrites.Unknown, total.BatchPuts.Attempted, total.Deletes.Acknowledged, total.ObjectReads.Attempted, total.RefOps.Attempted, total.RefOps.Unknown,
		total.Lost, total.StaleReads, total.Resurrected, total.CorruptReads, converge)
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
