package tests

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// TestCrashLoop kills (SIGKILL) one data node of a process cluster at a
// random point of a write burst, again and again. The burst writes at
// consistency all through that node and another one, and goes on for a
// moment while the node is dead. After each restart:
//
//   - no write that began after the node died and ended before it was
//     restarted was acknowledged (all N replicas cannot have had a copy);
//   - the node's own store holds every object acknowledged so far, byte for
//     byte, and so do the other two (an ack at all means every replica
//     had a durable copy; SIGKILL loses nothing that was synced);
//   - the node came back ready, so its store opened.
//
// STRATUM_CRASHLOOP_ROUNDS sets the number of kills (default 4; make chaos
// runs 15) and STRATUM_CRASHLOOP_SEED the seed (default: the clock).
func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("a crash loop of real processes")
	}
	rounds := envInt(t, "STRATUM_CRASHLOOP_ROUNDS", 4)
	seed := int64(envInt(t, "STRATUM_CRASHLOOP_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("crash loop: %d rounds, seed %d (STRATUM_CRASHLOOP_SEED=%d replays the kill points)", rounds, seed, seed)
	rng := rand.New(rand.NewSource(seed))
	c := startProcCluster(t, 3, 8)
	victim := c.Nodes[0]
	acked := map[api.OID][]byte{}
	for round := 0; round < rounds; round++ {
		load := startObjectLoad(c, objectLoadConfig{Seed: seed + int64(round), Writers: 4, Level: api.All, Via: c.Nodes[:2]})
		into := time.Duration(200+rng.Intn(1300)) * time.Millisecond
		time.Sleep(into)
		victim.cmd.Process.Signal(syscall.SIGKILL)
		victim.cmd.Wait()
		dead := time.Now()
		time.Sleep(time.Duration(300+rng.Intn(700)) * time.Millisecond)
		load.stop()
		restart := time.Now()
		c.start(victim)
		c.recover(victim)
		impossible, added := 0, 0
		load.mu.Lock()
		for oid, a := range load.acked {
			if a.began.After(dead) && a.acked.Before(restart) {
				impossible++
				continue
			}
			acked[oid] = a.data
			added++
		}
		load.mu.Unlock()
		if impossible > 0 {
			t.Fatalf("round %d: %d writes acknowledged at consistency all while %s was dead (began after the kill, answered before the restart)", round, impossible, victim.ID)
		}
		checkLocalCopies(t, c, acked)
		t.Logf("round %d: %s killed %s into the burst; %d new acknowledged objects (%d in all) on every node's store, byte for byte",
			round, victim.ID, into, added, len(acked))
	}
	if len(acked) < 20*rounds {
		t.Fatalf("only %d objects acknowledged in %d rounds: the burst did not run", len(acked), rounds)
	}
}

// checkLocalCopies reads every object from each node's own store and
// compares it with what was acknowledged.
func checkLocalCopies(t *testing.T, c *procCluster, acked map[api.OID][]byte) {
	t.Helper()
	oids := oidsOf(acked)
	for _, n := range c.Nodes {
		bad, seen := []string{}, 0
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := c.localGetMany(ctx, n, oids, func(oid api.OID, data []byte, code string) {
			seen++
			if code != "" || !bytes.Equal(data, acked[oid]) {
				bad = append(bad, fmt.Sprintf("%s (%d bytes): %q, %d bytes", oid, len(acked[oid]), code, len(data)))
			}
		})
		cancel()
		if err != nil || seen != len(oids) {
			t.Fatalf("reading %s's own copies: %v (%d of %d answered)", n.ID, err, seen, len(oids))
		}
		if len(bad) > 0 {
			t.Fatalf("%d of %d acknowledged objects missing or wrong in %s's store, first: %s", len(bad), len(oids), n.ID, bad[0])
		}
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}
