package tests

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/tests/lincheck"
)

// linKey is one ref of the workload: a repository and a ref name.
type linKey struct{ repo, ref string }

// TestRefsLinearizableUnderFaults runs concurrent reads and CAS
// transactions on a dozen refs spread over the partitions while a seeded
// nemesis kills (SIGKILL) and pauses (SIGSTOP past the lease) partition
// primaries, and checks the history with porcupine. An operation whose
// outcome the client could not learn is recorded as unknown, never guessed.
func TestRefsLinearizableUnderFaults(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("nemesis seed %d", seed)
	c := startProcCluster(t, 3, 8)
	keys := linKeys()
	stopLoad, wait, rec := runLinWorkload(c, keys, seed)
	nemesis(t, c, keys, rand.New(rand.NewSource(seed)))
	time.Sleep(2 * time.Second) // a little load after the last heal
	stopLoad()
	wait()
	checkLinearizable(t, rec.Ops())
}

// linKeys are a dozen refs spread over the partitions.
func linKeys() []linKey {
	var keys []linKey
	for r := 0; r < 6; r++ {
		for _, ref := range []string{"refs/heads/main", "refs/heads/dev"} {
			keys = append(keys, linKey{fmt.Sprintf("lin/r%d", r), ref})
		}
	}
	return keys
}

// runLinWorkload starts six clients; stop ends them and wait waits for them.
func runLinWorkload(c *procCluster, keys []linKey, seed int64) (stop func(), wait func(), rec *lincheck.Recorder) {
	rec = lincheck.NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			linClient(ctx, c, rec, w, keys, rand.New(rand.NewSource(seed+int64(w))))
		}()
	}
	return cancel, wg.Wait, rec
}

// checkLinearizable checks a ref history with porcupine and requires
// enough acknowledged transactions for the check to mean something.
func checkLinearizable(t *testing.T, ops []lincheck.Op) {
	t.Helper()
	if verdict := linVerdict(t, ops); verdict != "" {
		t.Fatal(verdict)
	}
}

// minAckedCAS is the floor of acknowledged CAS below which a history proves
// nothing.
const minAckedCAS = 50

// linVerdict checks a ref history and returns "" when it is linearizable
// with enough acknowledged CAS, or what is wrong (with the path of the
// history's visualization when it is not linearizable).
func linVerdict(t *testing.T, ops []lincheck.Op) string {
	res := lincheck.Check(ops, 60*time.Second)
	t.Logf("history: %d ops checked, %d dropped, %d unknown CAS: %s", res.Ops, res.Dropped, res.UnknownOps, res.Info)
	if !res.Linearizable || res.Unknown {
		path := t.TempDir() + "/history.html"
		lincheck.Visualize(ops, path)
		return fmt.Sprintf("ref history is not linearizable (checker unknown=%v): %s; visualization in %s", res.Unknown, res.Info, path)
	}
	if n := countOps(ops, lincheck.CAS, lincheck.OK); n < minAckedCAS {
		return fmt.Sprintf("only %d CAS acknowledged: the workload did not exercise the cluster", n)
	}
	return ""
}

// countOps counts the operations of a kind with an outcome.
func countOps(ops []lincheck.Op, kind lincheck.Kind, outcome lincheck.Outcome) int {
	n := 0
	for _, op := range ops {
		if op.Kind == kind && op.Outcome == outcome {
			n++
		}
	}
	return n
}

// linClient issues reads and CAS on random keys through random nodes until
// ctx is done.
func linClient(ctx context.Context, c *procCluster, rec *lincheck.Recorder, id int, keys []linKey, rng *rand.Rand) {
	seen := map[linKey]string{}
	clients := make([]*client.Client, len(c.Nodes)) // one keep-alive client per node
	for i, node := range c.Nodes {
		clients[i], _ = client.New(client.Config{Endpoint: node.URL(), Timeout: 4 * time.Second})
	}
	for n := 0; ctx.Err() == nil; n++ {
		time.Sleep(10 * time.Millisecond) // a bounded rate keeps the history checkable
		k := keys[rng.Intn(len(keys))]
		cl := clients[rng.Intn(len(clients))]
		op := lincheck.Op{Client: id, Key: k.repo + " " + k.ref}
		if rng.Intn(2) == 0 {
			op.Kind = lincheck.Read
			op.Call = rec.Begin()
			oid, err := cl.GetRef(context.Background(), k.repo, k.ref)
			switch {
			case err == nil:
				op.Outcome, op.Value = lincheck.OK, oid
			case errors.Is(err, api.ErrNotFound):
				op.Outcome = lincheck.OK
			default:
				op.Outcome = lincheck.Failed
			}
			if op.Outcome == lincheck.OK {
				seen[k] = op.Value
			}
			rec.End(op)
			continue
		}
		// Never the zero OID, which would mean "delete".
		op.Kind, op.Old, op.New = lincheck.CAS, seen[k], fmt.Sprintf("%02x%038x", id+1, n+1)
		old := op.Old
		if old == "" {
			old = api.ZeroOID
		}
		op.Call = rec.Begin()
		_, err := cl.RefTxn(context.Background(), k.repo, api.RefTxn{Updates: []api.RefUpdate{{Name: k.ref, Old: old, New: op.New}}}, false)
		op.Outcome = casOutcome(err, &op)
		if op.Outcome == lincheck.OK {
			seen[k] = op.New
		} else if op.Outcome == lincheck.Conflict {
			seen[k] = op.Value
		}
		rec.End(op)
	}
}

// casOutcome classifies a transaction's answer: only refusals that by
// contract applied nothing are Failed; anything without a clear answer is
// Unknown.
func casOutcome(err error, op *lincheck.Op) lincheck.Outcome {
	var ce *client.ConflictError
	switch {
	case err == nil:
		return lincheck.OK
	case errors.As(err, &ce) && len(ce.Refs) == 1:
		op.ValueKnown = true
		if !api.IsZeroOID(ce.Refs[0].OID) {
			op.Value = ce.Refs[0].OID
		}
		return lincheck.Conflict
	case errors.Is(err, api.ErrNotPrimary), errors.Is(err, api.ErrNoPartitions), errors.Is(err, api.ErrBadRequest):
		return lincheck.Failed
	case errors.Is(err, syscall.ECONNREFUSED):
		return lincheck.Failed // never sent: the entry node was down
	}
	return lincheck.Unknown
}

// nemesis runs four seeded fault rounds: each picks the primary of a random
// key's partition and either kills it (and restarts it 3s later) or pauses
// it for 5s (past its 2s lease), then lets the cluster settle.
func nemesis(t *testing.T, c *procCluster, keys []linKey, rng *rand.Rand) {
	for round := 0; round < 4; round++ {
		time.Sleep(time.Duration(1500+rng.Intn(1500)) * time.Millisecond)
		k := keys[rng.Intn(len(keys))]
		victim := c.node(c.primaryOf(k.repo).Primary)
		if rng.Intn(2) == 0 {
			t.Logf("nemesis round %d: SIGKILL %s (primary of %s), restart in 3s", round, victim.ID, k.repo)
			victim.cmd.Process.Signal(syscall.SIGKILL)
			victim.cmd.Wait()
			time.Sleep(3 * time.Second)
			c.start(victim)
		} else {
			t.Logf("nemesis round %d: SIGSTOP %s (primary of %s) for 5s", round, victim.ID, k.repo)
			victim.cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(5 * time.Second)
			victim.cmd.Process.Signal(syscall.SIGCONT)
		}
		if c.recover(victim) {
			t.Logf("nemesis round %d: %s fenced after the fault; restarted it", round, victim.ID)
		}
	}
}

// healthyWithin waits until node is ACTIVE in etcd and ready, and reports
// false at once if it was declared DOWN (its generation is then fenced).
func (c *procCluster) healthyWithin(n *procNode, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m, _, err := c.CP.Member(context.Background(), n.ID)
		if err == nil && m.State == api.StateDown {
			return false
		}
		resp, herr := http.Get(n.URL() + "/readyz")
		if herr == nil {
			resp.Body.Close()
			if err == nil && m.State == api.StateActive && resp.StatusCode == 200 {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
