package tests

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// Every fsync of one data node process fails with EIO (strace injects the
// error into the running process) during 300 writes at consistency all.
// That node acknowledges none of them (a write is acknowledged only after
// its sync succeeded), so each fails with 503 while the other two store
// it; after a kill -9 and a restart without the fault its store opens
// cleanly and hinted handoff brings it every object.
func TestFailingFsyncAcknowledgesNothing(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Fatal("strace is not installed; .ci/run installs it (apt-get install strace)")
	}
	c := startProcCluster(t, 3, 8)
	cl := c.client(c.Nodes[0])
	put := func(i int) api.Receipt {
		t.Helper()
		rec, err := cl.PutBytes(ctxT(t), []byte(fmt.Sprintf("fsync fault object %d", i)), api.SHA256, api.Quorum)
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		return rec
	}
	for i := range 200 {
		put(i)
	}
	n3 := c.Nodes[2]
	strace := exec.Command("strace", "-f", "-qq", "-o", "/dev/null", "-e", "inject=fsync,fdatasync:error=EIO", "-p", strconv.Itoa(n3.cmd.Process.Pid))
	if err := strace.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { strace.Process.Kill(); strace.Wait() })
	time.Sleep(time.Second) // attached to every thread
	// At consistency all, a write succeeds only if n3 acknowledges it too.
	ackedByN3 := 0
	for i := 200; i < 500; i++ {
		rec, err := cl.PutBytes(ctxT(t), []byte(fmt.Sprintf("fsync fault object %d", i)), api.SHA256, api.All)
		if err == nil || slices.Contains(rec.Acked, "n3") {
			ackedByN3++
			t.Errorf("n3 acknowledged object %d while every fsync fails: %+v", i, rec)
		} else if !errors.Is(err, api.ErrQuorumNotReached) {
			t.Fatalf("put %d at all with n3's fsync failing: %v; want quorum_not_reached", i, err)
		}
	}
	kill9(t, n3)
	strace.Process.Kill()
	strace.Wait()
	c.start(n3)
	waitReady(t, n3.URL())
	Eventually(t, 60*time.Second, "n3 holds all 500 objects", func() bool {
		st, err := c.client(n3).Status(ctxT(t))
		return err == nil && st.Objects == 500
	})
	for i := range 500 {
		data := []byte(fmt.Sprintf("fsync fault object %d", i))
		oid, _ := api.Digest(api.SHA256, data)
		if got, err := c.client(n3).GetBytes(ctxT(t), oid, api.Quorum); err != nil || string(got) != string(data) {
			t.Fatalf("object %d after the fault: %v", i, err)
		}
	}
	t.Logf("n3 acknowledged %d of 300 writes while its fsyncs failed; after a restart it holds all 500", ackedByN3)
}
