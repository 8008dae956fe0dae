package tests

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

// One node's data directory is a 24 MiB tmpfs that fills up during a
// stream of quorum writes. The full node refuses writes with an error (the
// other two acknowledge them), never acknowledges one it did not store,
// keeps serving what it holds, and once the disk has room again and it
// has been restarted, it takes writes again and receives, through hints,
// every write it missed.
func TestFullDiskOnOneNode(t *testing.T) {
	dir := t.TempDir()
	tmpfs := filepath.Join(dir, "n3")
	if out, err := exec.Command("mkdir", "-p", tmpfs).CombinedOutput(); err != nil {
		t.Fatalf("mkdir: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", tmpfs).CombinedOutput(); err != nil {
		t.Fatalf("this test needs root to mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", tmpfs).Run() })
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.HintInterval = 200 * time.Millisecond
		if cfg.ID == "n3" {
			cfg.Store.Dir = tmpfs
		}
	})
	cl := c.Client(0)
	objs := map[api.OID][]byte{}
	failedOnN3 := 0
	for i := 0; i < 20000 && failedOnN3 < 50; i++ {
		data := randomBytes(int64(i), 16<<10) // incompressible
		rec, err := cl.PutBytes(ctxT(t), data, api.SHA256, api.Quorum)
		if err != nil {
			t.Fatalf("put %d with one disk full: %v", i, err)
		}
		oid := api.MustParseOID(rec.OID)
		objs[oid] = data
		if slices.Contains(rec.Failed, "n3") {
			failedOnN3++
			if local(t, c, 2, oid) == "copy" {
				t.Fatalf("n3 reported a failed write of %s but holds it", oid)
			}
		}
	}
	if failedOnN3 < 50 {
		t.Fatalf("n3's disk never filled (%d objects written)", len(objs))
	}
	held := c.Nodes[2].Node.Status().Objects
	t.Logf("n3 full after holding %d objects; %d writes acknowledged by the other two", held, failedOnN3)
	for oid, want := range objs { // every acknowledged write reads back
		got, err := cl.GetBytes(ctxT(t), oid, api.Quorum)
		if err != nil || string(got) != string(want) {
			t.Fatalf("read %s with n3 full: %v", oid, err)
		}
	}
	// The full node answers writes with 507 insufficient_storage.
	extra := randomBytes(99999, 16<<10)
	oid, _ := api.Digest(api.SHA256, extra)
	if code, body := rawRequest(t, c.Nodes[2].Addr, "PUT", "/v1/objects/"+oid.String()+"?consistency=all", extra); code != 503 && code != 507 {
		t.Fatalf("PUT at all through the full node: %d %s; want 503 (not enough replicas)", code, body)
	}
	objs[oid] = extra // stored by n1 and n2 all the same, and hinted for n3
	if out, err := exec.Command("mount", "-o", "remount,size=512m", tmpfs).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	// leveldb's journal keeps its write error: the node takes writes again
	// after a restart (docs/operations.md, "A full disk").
	c.StopNode(2)
	c.StartNode(2)
	Eventually(t, 60*time.Second, "n3 receives every write it owns", func() bool {
		owned := 0
		for oid := range objs {
			if c.Nodes[2].Node.Ring().Owns("n3", []byte(oid.String())) {
				owned++
			}
		}
		return c.Nodes[2].Node.Status().Objects == int64(owned)
	})
	// n1's breaker for n3 may still be open from the failures: within its
	// cooldown, a write at all succeeds.
	Eventually(t, 10*time.Second, "a put at all succeeds once n3 has room", func() bool {
		data := []byte(fmt.Sprintf("after the disk has room %d", time.Now().UnixNano()))
		rec, err := cl.PutBytes(ctxT(t), data, api.SHA256, api.All)
		return err == nil && len(rec.Acked) == 3
	})
}
