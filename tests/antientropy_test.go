package tests

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

// aeTune turns hinted handoff delivery off (so only anti-entropy can
// repair) and anti-entropy on, every 200ms, on the nodes named in on.
func aeTune(on ...string) func(*datanode.Config) {
	return func(cfg *datanode.Config) {
		cfg.HintInterval = time.Hour
		cfg.AntiEntropyInterval = 0
		for _, id := range on {
			if cfg.ID == id {
				cfg.AntiEntropyInterval = 200 * time.Millisecond
			}
		}
	}
}

func aeTotal(t *testing.T, c *Cluster, direction string) float64 {
	t.Helper()
	sum := 0.0
	for i := range c.Nodes {
		if v := metric(t, c, i, fmt.Sprintf(`stratum_antientropy_objects_total\{direction="%s"\}`, direction)); v > 0 {
			sum += v
		}
	}
	return sum
}

// A replica that missed writes while it was stopped gets them back from
// anti-entropy alone: no hint is delivered and no client reads them.
func TestAntiEntropyRepairsAReturningReplica(t *testing.T) {
	f := func(name string, on ...string) {
		t.Run(name, func(t *testing.T) {
			c := MustStartCluster(t, 3, aeTune(on...))
			c.StopNode(2)
			objs := putMany(t, c, 0, 40, api.Quorum)
			// Once n1 holds a hint per object, no write to n3 is in flight.
			Eventually(t, 10*time.Second, "n1 holds 40 hints", func() bool { return status(t, c, 0).HintsPending == 40 })
			c.StartNode(2)
			Eventually(t, 15*time.Second, "n3 holds all 40 objects", func() bool { return c.Nodes[2].Node.Status().Objects == 40 })
			for oid, want := range objs { // n3 reads its own copy first at level one
				got, err := c.Client(2).GetBytes(ctxT(t), oid, api.One)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("GET %s from n3 at one: %q, %v; want %q", oid, got, err, want)
				}
			}
			if moved := aeTotal(t, c, "push") + aeTotal(t, c, "pull"); moved < 40 {
				t.Fatalf("anti-entropy moved %v objects; want at least 40", moved)
			}
			if st := status(t, c, 2); st.HintsPending != 0 || (len(on) == 1 && st.AEPulled != 40) {
				t.Fatalf("n3 status: hints_pending %d, ae_pulled %d; want 0 and 40 when only n3 runs anti-entropy", st.HintsPending, st.AEPulled)
			}
			Eventually(t, 5*time.Second, "a round recorded", func() bool {
				st := status(t, c, 2)
				return st.AELastRound != nil && metric(t, c, 2, "stratum_antientropy_rounds_total") > 0
			})
		})
	}
	f("all nodes", "n1", "n2", "n3")
	f("only the returning node pulls", "n3")
}

// An object only one node holds is pushed to the other replicas the ring
// places it on; they run no anti-entropy of their own.
func TestAntiEntropyPushesWhatPeersLack(t *testing.T) {
	c := MustStartCluster(t, 3, aeTune("n1"))
	c.StopNode(1)
	c.StopNode(2)
	objs := putMany(t, c, 0, 10, api.One)
	if got := c.Nodes[0].Node.Status().Objects; got != 10 {
		t.Fatalf("n1 holds %d objects; want 10", got)
	}
	// Once n1 holds a hint per object and replica, no write is in flight.
	Eventually(t, 10*time.Second, "n1 holds 20 hints", func() bool { return status(t, c, 0).HintsPending == 20 })
	c.StartNode(1)
	c.StartNode(2)
	for _, i := range []int{1, 2} {
		Eventually(t, 15*time.Second, c.Nodes[i].ID+" holds the 10 objects", func() bool { return c.Nodes[i].Node.Status().Objects == 10 })
		for oid, want := range objs {
			got, err := c.Client(i).GetBytes(ctxT(t), oid, api.One)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("GET %s from %s at one: %q, %v; want %q", oid, c.Nodes[i].ID, got, err, want)
			}
		}
	}
	if st := status(t, c, 0); st.AEPushed != 20 || st.AEPulled != 0 {
		t.Fatalf("n1: ae_pushed %d, ae_pulled %d; want 20 and 0", st.AEPushed, st.AEPulled)
	}
	if got := metric(t, c, 0, `stratum_antientropy_objects_total\{direction="push"\}`); got != 20 {
		t.Fatalf("n1 push counter = %v; want 20", got)
	}
}

// Two replicas that differ by the same number of objects in every bucket
// (different sets, equal counts) still find both differences: digests
// hash the OIDs, they do not count them.
func TestAntiEntropyFindsEqualCountDifferences(t *testing.T) {
	c := MustStartCluster(t, 3, aeTune())
	// Pairs of objects whose OIDs share their first byte, so each bucket
	// gets one object on n1 and a different one on n2.
	byBucket := map[string][][]byte{}
	var pairs [][2][]byte
	for seed := int64(0); len(pairs) < 10; seed++ {
		data := randomBytes(90000+seed, 64)
		oid, _ := api.Digest(api.SHA256, data)
		b := oid.String()[:2] // the bucket: the OID's first byte
		if byBucket[b] = append(byBucket[b], data); len(byBucket[b]) == 2 {
			pairs = append(pairs, [2][]byte{byBucket[b][0], byBucket[b][1]})
		}
	}
	rev := c.Nodes[0].Node.Ring().Revision()
	put := func(i int, data []byte) {
		conn, err := net.Dial("tcp", c.Nodes[i].Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		oid, _ := api.Digest(api.SHA256, data)
		if status, body := rawReplicaPut(t, conn, c.Nodes[i].Addr, c.Nodes[2].Node, oid, rev, data); status != 201 {
			t.Fatalf("replica put on %s: %d %s", c.Nodes[i].ID, status, body)
		}
	}
	want := map[api.OID][]byte{}
	for _, p := range pairs {
		put(0, p[0])
		put(1, p[1])
		for _, d := range p {
			oid, _ := api.Digest(api.SHA256, d)
			want[oid] = d
		}
	}
	if a, b := c.Nodes[0].Node.Status().Objects, c.Nodes[1].Node.Status().Objects; a != 10 || b != 10 {
		t.Fatalf("before: n1 holds %d, n2 holds %d; want 10 each (equal counts, different sets)", a, b)
	}
	// Only n1 runs anti-entropy: it must pull n2's ten and push its own ten.
	c.StopNode(0)
	c.Tune = aeTune("n1")
	c.StartNode(0)
	for _, i := range []int{0, 1} {
		Eventually(t, 15*time.Second, c.Nodes[i].ID+" holds all 20", func() bool { return c.Nodes[i].Node.Status().Objects == 20 })
	}
	for oid, data := range want {
		got, err := c.Client(1).GetBytes(ctxT(t), oid, api.One)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("GET %s from n2: %v", oid, err)
		}
	}
	if st := status(t, c, 0); st.AEPulled != 10 || st.AEPushed < 10 {
		t.Fatalf("n1: ae_pulled %d, ae_pushed %d; want 10 pulled and at least 10 pushed", st.AEPulled, st.AEPushed)
	}
}
