package tests

import (
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

// A node back from downtime knows how long it was away (its atomic
// last-healthy record) and repairs at once, before ordinary anti-entropy:
// here periodic anti-entropy and hint delivery wait an hour, so only the
// recovery round can bring back what was written while it was down.
func TestDowntimeRecoveryRepairsFirst(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.HintInterval = time.Hour
		cfg.AntiEntropyInterval = time.Hour
		cfg.HealthyMarkInterval = 100 * time.Millisecond
	})
	if st := status(t, c, 2); st.DowntimeSeconds != 0 || st.RecoveredAt != nil {
		t.Fatalf("first start: downtime %v, recovered_at %v; want 0 and none", st.DowntimeSeconds, st.RecoveredAt)
	}
	time.Sleep(300 * time.Millisecond) // a healthy record exists
	c.StopNode(2)
	stopped := time.Now()
	objs := putMany(t, c, 0, 25, api.Quorum)
	Eventually(t, 10*time.Second, "n1 holds 25 hints", func() bool { return status(t, c, 0).HintsPending == 25 })
	time.Sleep(time.Second)
	away := time.Since(stopped)
	c.StartNode(2)
	Eventually(t, 15*time.Second, "n3 recovered all 25 objects", func() bool { return c.Nodes[2].Node.Status().Objects == 25 })
	st := status(t, c, 2)
	if st.DowntimeSeconds < away.Seconds()-0.5 || st.DowntimeSeconds > away.Seconds()+5 || st.AEPulled != 25 {
		t.Fatalf("n3 status: downtime %.1fs (was away about %.1fs), ae_pulled %d; want about the same and 25", st.DowntimeSeconds, away.Seconds(), st.AEPulled)
	}
	Eventually(t, 5*time.Second, "recovered_at set", func() bool { return status(t, c, 2).RecoveredAt != nil })
	for oid, want := range objs {
		got, err := c.Client(2).GetBytes(ctxT(t), oid, api.One)
		if err != nil || string(got) != string(want) {
			t.Fatalf("GET %s from n3: %v", oid, err)
		}
	}
}
