package tests

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
// (docs/testing.md has the table). ringKinds join them on a cluster of
// five nodes or more: a majorities ring needs five hosts, and a drain or
// removal needs more nodes than the replication factor (3).
var (
	nemesisKinds = []string{"kill", "pause", "isolate", "split", "bridge", "etcd-cut", "slow", "wipe", "clock", "disk-full", "fsync-fail"}
	ringKinds    = []string{"ring", "drain", "remove"}
)

// kindsFor returns the faults a cluster of n data nodes can take.
func kindsFor(n int) []string {
	if n >= 5 {
		return append(append([]string{}, nemesisKinds...), ringKinds...)
	}
	return nemesisKinds
}

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
	kinds := kindsFor(len(nm.c.Nodes))
	for time.Since(nm.begin) < d {
		gap := time.Duration(1000+nm.rng.Intn(1500)) * time.Millisecond
		kind := kinds[nm.rng.Intn(len(kinds))]
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
		return nm.partition(hold, across([]string{victim.ID}, append([]string{"cp"}, others...)))
	case "split":
		// The victim keeps etcd with the smaller side; the majority of the
		// data nodes loses both: {victim, cp} | {o0, o1} on three nodes,
		// {victim, o0, cp} | {o1, o2, o3} on five.
		small := append([]string{victim.ID, "cp"}, others[:len(others)/2-1]...)
		return nm.partition(hold, across(small, others[len(others)/2-1:]))
	case "bridge":
		// Two halves that cannot see each other; the victim sees both.
		return nm.partition(hold, across(others[:len(others)/2], others[len(others)/2:]))
	case "ring":
		// A majorities ring: the nodes in a seeded circle, each seeing only
		// its two neighbours (and etcd): every node sees a majority of the
		// five, and no two majorities are the same.
		order := nm.c.ids()
		rand.New(rand.NewSource(int64(aux))).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var links [][2]string
		for i := range order {
			for j := i + 2; j < len(order); j++ {
				if i != 0 || j != len(order)-1 {
					links = append(links, [2]string{order[i], order[j]})
				}
			}
		}
		return "circle " + strings.Join(order, ">") + ", " + nm.partition(hold, links)
	case "clock":
		// The node's wall clock jumps by minutes, forward or back, for the
		// hold (its --clock-skew-file); the host clock is shared.
		skew := time.Duration(aux%41-20) * time.Minute
		if skew == 0 {
			skew = 7 * time.Minute
		}
		if err := os.WriteFile(skewFileOf(victim), []byte(skew.String()), 0o644); err != nil {
			nm.t.Fatal(err)
		}
		time.Sleep(hold)
		os.Remove(skewFileOf(victim))
		return fmt.Sprintf("wall clock %+v for %s", skew, hold)
	case "disk-full":
		return nm.fillDisk(victim, hold)
	case "fsync-fail":
		return nm.failFsync(victim, hold)
	case "drain":
		return nm.drain(victim, hold)
	case "remove":
		return nm.remove(victim, hold)
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
		nm.wipe(victim)
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

// drain drains victim through another node's admin API and waits until
// it is drained and in no ref partition, removes it, and brings it back
// with an empty data directory, so it joins again: the ring changes twice
// under the load.
func (nm *chaosNemesis) drain(victim *procNode, hold time.Duration) string {
	cl := nm.c.client(nm.c.node(nm.others(victim)[0]))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := cl.NodeAction(ctx, victim.ID, "drain", false); err != nil {
		nm.t.Fatalf("drain %s: %v", victim.ID, err)
	}
	start := time.Now()
	for !nm.drained(ctx, victim.ID) {
		if time.Since(start) > 2*time.Minute {
			nm.t.Fatalf("%s not drained 2 minutes after the drain began", victim.ID)
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	if err := cl.NodeAction(ctx, victim.ID, "remove", false); err != nil {
		nm.t.Fatalf("remove drained %s: %v", victim.ID, err)
	}
	nm.kill(victim)
	nm.wipe(victim)
	time.Sleep(hold)
	nm.restart(victim)
	return fmt.Sprintf("drained in %s, removed, rejoined empty after %s", took.Round(100*time.Millisecond), hold)
}

// drained reports whether id is drained and a member of no ref partition,
// the two conditions scripts/drain-node.sh waits for.
func (nm *chaosNemesis) drained(ctx context.Context, id string) bool {
	for _, n := range nm.c.Nodes {
		if n.ID == id {
			continue
		}
		nodes, err := nm.c.client(n).Nodes(ctx)
		if err != nil {
			continue
		}
		for _, s := range nodes {
			if s.ID == id {
				return s.Drained && s.Partitions == 0
			}
		}
	}
	return false
}

// remove kills victim and removes it from the cluster by force, as an
// operator does with a node that died for good, then brings it back with an
// empty data directory after hold, so it joins again.
func (nm *chaosNemesis) remove(victim *procNode, hold time.Duration) string {
	nm.kill(victim)
	cl := nm.c.client(nm.c.node(nm.others(victim)[0]))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		err := cl.NodeAction(ctx, victim.ID, "remove", true)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			nm.t.Fatalf("forced remove of %s: %v", victim.ID, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	nm.wipe(victim)
	time.Sleep(hold)
	nm.restart(victim)
	return fmt.Sprintf("SIGKILL, forced remove, rejoined empty after %s", hold)
}

// fillDisk fills the victim's tmpfs for hold, then frees it and restarts
// the node: goleveldb keeps a failed write's error, so an operator
// restarts a node whose disk filled up (docs/operations.md).
func (nm *chaosNemesis) fillDisk(victim *procNode, hold time.Duration) string {
	filler := filepath.Join(diskOf(victim), "filler")
	f, err := os.Create(filler)
	if err != nil {
		nm.t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	written := 0
	for ; written < 4<<10; written++ { // at most 4 GiB: the tmpfs is 1 GiB
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	time.Sleep(hold)
	os.Remove(filler)
	nm.kill(victim)
	nm.restart(victim)
	return fmt.Sprintf("disk filled (%d MiB of filler) for %s, then freed and the node restarted", written, hold)
}

// failFsync makes every fsync and fdatasync of the victim fail with EIO
// for hold (strace fault injection), then kills it and restarts it: a node
// whose disk failed a sync must not be trusted until it restarts.
func (nm *chaosNemesis) failFsync(victim *procNode, hold time.Duration) string {
	strace := exec.Command("strace", "-f", "-qq", "-o", "/dev/null", "-e", "inject=fsync,fdatasync:error=EIO",
		"-p", strconv.Itoa(victim.cmd.Process.Pid))
	if err := strace.Start(); err != nil {
		nm.t.Fatalf("strace (the fsync fault needs it; .ci/run installs it): %v", err)
	}
	time.Sleep(hold)
	nm.kill(victim)
	strace.Process.Kill()
	strace.Wait()
	nm.restart(victim)
	return fmt.Sprintf("every fsync failed with EIO for %s, then SIGKILL and restart", hold)
}

func (nm *chaosNemesis) wipe(n *procNode) {
	if err := os.RemoveAll(n.Dir); err != nil {
		nm.t.Fatalf("wipe %s: %v", n.Dir, err)
	}
}

// across lists every link between a host of a and a host of b.
func across(a, b []string) [][2]string {
	var links [][2]string
	for _, x := range a {
		for _, y := range b {
			links = append(links, [2]string{x, y})
		}
	}
	return links
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
