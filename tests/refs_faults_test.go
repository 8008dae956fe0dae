package tests

import (
	"math/rand"
	"syscall"
	"testing"
	"time"
)

// Ref protocol faults aimed at the takeover (issue 15.5 and 15.6), each
// under the ref workload of TestRefsLinearizableUnderFaults and checked
// with porcupine (an unknown verdict fails). The deterministic regression
// tests of the two defects are TestRefTakeoverConfirmsTheRecord and
// refstore's TestApplyRefusesOtherChangesAtTheSameVersion; these runs put
// the same situations among real processes, real timing and real load.

// TestRefsPrimaryCutFromEtcdReregisters cuts a partition primary from etcd
// only (it still talks to its peers and clients) for a seeded duration
// around its lease: shorter than the TTL (it keeps its lease), about the
// TTL (the planner's promotion and its re-registration race), or longer
// (it is promoted away). On healing it re-registers at once and takes its
// partitions over again, possibly before its watch shows the promotion.
func TestRefsPrimaryCutFromEtcdReregisters(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("nemesis seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	lab := newNetLab(t)
	c := startNetCluster(t, lab, 3, 8)
	keys := linKeys()
	stopLoad, wait, rec := runLinWorkload(c, keys, seed)
	for round := 0; round < 4; round++ {
		time.Sleep(time.Duration(1000+rng.Intn(1000)) * time.Millisecond)
		k := keys[rng.Intn(len(keys))]
		victim := c.node(c.primaryOf(k.repo).Primary)
		cut := time.Duration(1500+rng.Intn(2000)) * time.Millisecond // lease TTL 2s, plan interval 200ms
		t.Logf("round %d: %s (primary of %s) cut from etcd for %s", round, victim.ID, k.repo, cut)
		lab.cut(victim.ID, "cp")
		time.Sleep(cut)
		after := c.primaryOf(k.repo).Primary
		lab.heal()
		t.Logf("round %d: at the heal the primary of %s is %s", round, k.repo, after)
		if c.recover(victim) {
			t.Logf("round %d: %s was declared DOWN (fenced); restarted it", round, victim.ID)
		}
	}
	time.Sleep(2 * time.Second) // a little load after the last heal
	stopLoad()
	wait()
	checkLinearizable(t, rec.Ops())
}

// TestRefsDelayedApplyAcrossGracefulRestart slows every replica of a
// partition (the delay proxy in front of each node) so that the primary's
// apply messages are still on their way when the primary is stopped
// gracefully (SIGTERM) and started again. The delayed applies of the old
// process reach the replicas after the new process has taken over and
// reuses their sequence numbers; they must change nothing a client can see.
func TestRefsDelayedApplyAcrossGracefulRestart(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("nemesis seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	lab := newNetLab(t)
	c := startNetClusterWith(t, lab, netClusterConfig{Nodes: 3, Partitions: 8, Proxied: true})
	keys := linKeys()
	stopLoad, wait, rec := runLinWorkload(c, keys, seed)
	for round := 0; round < 3; round++ {
		time.Sleep(time.Duration(1000+rng.Intn(1000)) * time.Millisecond)
		k := keys[rng.Intn(len(keys))]
		victim := c.node(c.primaryOf(k.repo).Primary)
		delay := time.Duration(500+rng.Intn(2500)) * time.Millisecond // below and above RefTimeout (2s)
		t.Logf("round %d: replicas of %s's partitions slowed by %s, then %s (primary of %s) restarted gracefully", round, victim.ID, delay, victim.ID, k.repo)
		for _, n := range c.Nodes {
			if n != victim {
				c.proxies[n.ID].setDelay(delay)
			}
		}
		time.Sleep(time.Duration(200+rng.Intn(600)) * time.Millisecond) // applies in flight
		victim.cmd.Process.Signal(syscall.SIGTERM)
		victim.cmd.Wait()
		c.proxies[victim.ID].down() // refused, as by a stopped node, rather than accepted and cut
		for _, n := range c.Nodes {
			if n != victim {
				c.proxies[n.ID].setDelay(0) // the new process's messages overtake the old one's
			}
		}
		c.start(victim)
		if err := c.proxies[victim.ID].up(); err != nil {
			t.Fatal(err)
		}
		if c.recover(victim) {
			t.Logf("round %d: %s was not healthy after its restart; restarted it again", round, victim.ID)
		}
	}
	time.Sleep(2 * time.Second)
	stopLoad()
	wait()
	checkLinearizable(t, rec.Ops())
}
