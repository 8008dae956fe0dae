package tests

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// One node's wall clock jumps by minutes, forward and back, every 300 ms
// (through its --clock-skew-file) while six clients run ref CAS
// transactions and another writes, deletes and stores objects again
// through every node. Nothing that decides safety reads that clock: the ref
// history stays linearizable, every object reads back as its last
// acknowledged operation left it (present after a PUT, 404 after a DELETE),
// at quorum, while the clock is still jumping and after.
func TestClockJumpsBreakNothing(t *testing.T) {
	skew := filepath.Join(t.TempDir(), "skew")
	c := startProcCluster(t, 3, 8)
	n1 := c.Nodes[0] // restarted with the skewed clock; the others keep the host's
	kill9(t, n1)
	n1.args = append(n1.args, "--clock-skew-file", skew)
	c.start(n1)
	waitReady(t, n1.URL())
	Eventually(t, 60*time.Second, "every partition served", func() bool { return c.servedCount() == 8 })
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	stopJumps := make(chan struct{})
	jumped := make(chan int)
	go func() {
		rng := rand.New(rand.NewSource(seed + 1)) // this goroutine's own
		n := 0
		for {
			select {
			case <-stopJumps:
				jumped <- n
				return
			case <-time.After(300 * time.Millisecond):
			}
			os.WriteFile(skew, []byte(fmt.Sprintf("%dm", rng.Intn(41)-20)), 0o644) // -20m .. +20m
			n++
		}
	}()
	keys := linKeys()
	stopLoad, wait, rec := runLinWorkload(c, keys, seed)

	// Objects: each goes through put, delete, put, delete... through
	// random nodes; after every acknowledged step a quorum read through
	// another node must agree.
	ops := 0
	until := time.Now().Add(8 * time.Second)
	for k := 0; k < 300 && (k < 40 || time.Now().Before(until)); k++ {
		data := []byte(fmt.Sprintf("clock jump object %d %d", k, seed))
		oid, _ := api.Digest(api.SHA256, data)
		for step := range 4 {
			via, check := c.Nodes[rng.Intn(3)], c.Nodes[rng.Intn(3)]
			var err error
			if step%2 == 0 {
				_, err = c.client(via).PutBytes(ctxT(t), data, api.SHA256, api.Quorum)
			} else {
				_, err = c.client(via).Delete(ctxT(t), oid, api.Quorum)
			}
			if err != nil {
				t.Fatalf("object %d step %d through %s: %v", k, step, via.ID, err)
			}
			ops++
			got, err := c.client(check).GetBytes(ctxT(t), oid, api.Quorum)
			switch {
			case step%2 == 0 && (err != nil || string(got) != string(data)):
				t.Fatalf("object %d after put %d, read through %s: %v", k, step, check.ID, err)
			case step%2 == 1 && !errors.Is(err, api.ErrNotFound):
				t.Fatalf("object %d after delete %d, read through %s: %v; want not found", k, step, check.ID, err)
			}
		}
	}
	close(stopJumps)
	n := <-jumped
	stopLoad()
	wait()
	t.Logf("%d clock jumps of up to 20 minutes; %d object puts and deletes, each read back as acknowledged", n, ops)
	checkLinearizable(t, rec.Ops())
}
