package tests

import (
	"fmt"
	"math/rand"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The chaos nemesis: faults drawn from a seeded rand.Rand, one at a time,
// each healed (and every node back to health) before the next. The draws
// happen in a fixed order whatever the cluster does, so a seed replays the
// same faults on the same nodes with the same durations; only timings
// shift with the machine's speed.

// fault is one injected fault, its times in seconds since the run began.
type fault struct {
	Kind   string  `json:"kind"`
	Target string  `json:"target"`
	Detail string  `json:"detail,omitempty"`
	Start  float64 `json:"start_s"`
	Healed float64 `json:"healed_s"`
	// Restarted are nodes declared DOWN during the fault, hence fenced, and
	// restarted afterwards as a supervisor would.
	Restarted []string `json:"restarted,omitempty"`
}

// nemesisKinds are the faults, in the order the seed indexes them
// (docs/testing.md has the table).
var nemesisKinds = []string{"kill", "pause", "isolate", "split", "bridge", "etcd-cut", "slow", "wipe"}

type chaosNemesis struct {
	t      *testing.T
	c      *procCluster
	lab    *netLab
	rng    *rand.Rand
	begin  time.Time
	faults []fault
}

func (nm *chaosNemesis) since() float64 {
	return time.Since(nm.begin).Round(10 * time.Millisecond).Seconds()
}

// run injects faults until d has passed since begin; the last one is
// healed before it returns.
func (nm *chaosNemesis) run(d time.Duration) {
	for time.Since(nm.begin) < d {
		gap := time.Duration(1000+nm.rng.Intn(1500)) * time.Millisecond
		kind := nemesisKinds[nm.rng.Intn(len(nemesisKinds))]
		victim := nm.c.Nodes[nm.rng.Intn(len(nm.c.Nodes))]
		hold := time.Duration(3000+nm.rng.Intn(3000)) * time.Millisecond
		aux := nm.rng.Intn(1000)
		time.Sleep(gap)
		f := fault{Kind: kind, Target: victim.ID, Start: nm.since()}
		f.Detail = nm.inject(kind, victim, hold, aux)
		f.Healed = nm.since()
		f.Restarted = nm.settle()
		nm.t.Logf("nemesis: %s %s %s at %.1fs, healed at %.1fs, restarted %v", f.Kind, f.Target, f.Detail, f.Start, f.Healed, f.Restarted)
		nm.faults = append(nm.faults, f)
	}
}

// inject applies one fault for hold, heals it, and describes it.
func (nm *chaosNemesis) inject(kind string, victim *procNode, hold time.Duration, aux int) string {
	others := nm.others(victim)
	switch kind {
	case "kill":
		nm.kill(victim)
		time.Sleep(hold)
		nm.restart(victim)
		return fmt.Sprintf("SIGKILL, restart after %s", hold)
	case "pause":
		victim.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(2*time.Second + hold) // past the 2s lease
		victim.cmd.Process.Signal(syscall.SIGCONT)
		return fmt.Sprintf("SIGSTOP for %s (lease TTL 2s)", 2*time.Second+hold)
	case "isolate":
		return nm.partition(hold, [][2]string{{victim.ID, "cp"}, {victim.ID, others[0]}, {victim.ID, others[1]}})
	case "split":
		return nm.partition(hold, [][2]string{{others[0], victim.ID}, {others[0], "cp"}, {others[1], victim.ID}, {others[1], "cp"}})
	case "bridge":
		return nm.partition(hold, [][2]string{{others[0], others[1]}})
	case "etcd-cut":
		return nm.partition(hold, [][2]string{{victim.ID, "cp"}})
	case "slow":
		delay := time.Duration(100+aux%200) * time.Millisecond
		nm.c.proxies[victim.ID].setDelay(delay)
		time.Sleep(hold)
		nm.c.proxies[victim.ID].setDelay(0)
		return fmt.Sprintf("+%s latency on every connection to it for %s", delay, hold)
	case "wipe":
		nm.kill(victim)
		if err := os.RemoveAll(victim.Dir); err != nil {
			nm.t.Fatalf("wipe %s: %v", victim.Dir, err)
		}
		time.Sleep(hold)
		nm.restart(victim)
		return fmt.Sprintf("SIGKILL, data directory removed, restart after %s", hold)
	}
	nm.t.Fatalf("unknown fault %q", kind)
	return ""
}

// kill kills n and closes its proxy's port, as the node's own port closes.
func (nm *chaosNemesis) kill(n *procNode) {
	n.cmd.Process.Signal(syscall.SIGKILL)
	n.cmd.Wait()
	nm.c.proxies[n.ID].down()
}

func (nm *chaosNemesis) restart(n *procNode) {
	if err := nm.c.proxies[n.ID].up(); err != nil {
		nm.t.Fatalf("reopening %s's proxy: %v", n.ID, err)
	}
	nm.c.start(n)
}

func (nm *chaosNemesis) others(victim *procNode) []string {
	var ids []string
	for _, n := range nm.c.Nodes {
		if n != victim {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

// partition cuts each pair of hosts for hold, then heals, and describes
// the cut links.
func (nm *chaosNemesis) partition(hold time.Duration, links [][2]string) string {
	var desc []string
	for _, l := range links {
		nm.lab.cut(l[0], l[1])
		desc = append(desc, l[0]+"-x-"+l[1])
	}
	time.Sleep(hold)
	nm.lab.heal()
	return fmt.Sprintf("links cut for %s: %s", hold, strings.Join(desc, " "))
}

// settle waits until every node is healthy, restarting a fenced one, and
// returns the restarted nodes.
func (nm *chaosNemesis) settle() []string {
	var restarted []string
	for _, n := range nm.c.Nodes {
		if nm.c.recover(n) {
			restarted = append(restarted, n.ID)
		}
	}
	return restarted
}

// healAll undoes whatever fault might remain (after a failed step) and
// waits for every node.
func (nm *chaosNemesis) healAll() {
	nm.lab.heal()
	for _, n := range nm.c.Nodes {
		nm.c.proxies[n.ID].setDelay(0)
		n.cmd.Process.Signal(syscall.SIGCONT)
	}
	nm.settle()
}
