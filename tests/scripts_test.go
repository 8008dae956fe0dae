package tests

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/api"
)

// script runs scripts/NAME against endpoint and returns its output and exit code.
func script(t *testing.T, endpoint, name string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"../scripts/" + name}, args...)...)
	cmd.Env = append(os.Environ(), "STRATUM_ENDPOINT="+endpoint)
	return runCmd(t, cmd)
}

func TestOpsScripts(t *testing.T) {
	c := MustStartCluster(t, 4, nil)
	for i := 0; i < 20; i++ {
		if _, err := c.Client(0).PutBytes(ctxT(t), randomBytes(int64(7000+i), 300), api.SHA256, api.All); err != nil {
			t.Fatal(err)
		}
	}
	ep := c.URL(0)
	if out, errOut, code := script(t, ep, "health.sh"); code != 0 || strings.Count(out, " ready ") != 4 {
		t.Fatalf("health.sh: code %d out %q err %q; want 4 ready nodes", code, out, errOut)
	}
	out, errOut, code := script(t, ep, "cluster-status.sh")
	if code != 0 || strings.Count(out, "ACTIVE") != 4 || !strings.Contains(out, "ring revision") {
		t.Fatalf("cluster-status.sh: code %d out %q err %q", code, out, errOut)
	}
	if out, errOut, code := script(t, ep, "drain-node.sh", "n4", "60"); code != 0 || !strings.Contains(out, "n4 drained") {
		t.Fatalf("drain-node.sh: code %d out %q err %q", code, out, errOut)
	}
	if out, errOut, code := script(t, ep, "remove-node.sh", "n4"); code != 0 || !strings.Contains(out, "n4 removed") {
		t.Fatalf("remove-node.sh: code %d out %q err %q", code, out, errOut)
	}
	if out, errOut, code := script(t, ep, "repair.sh", "pause"); code != 0 || !strings.Contains(out, "paused") {
		t.Fatalf("repair.sh pause: code %d out %q err %q", code, out, errOut)
	}
	if out, errOut, code := script(t, ep, "repair.sh", "watch", "1"); code == 0 || !strings.Contains(out, "PAUSED") || !strings.Contains(errOut, "not idle") {
		t.Fatalf("repair.sh watch while paused: code %d out %q err %q; want PAUSED and a timeout", code, out, errOut)
	}
	if out, errOut, code := script(t, ep, "repair.sh", "start", "60"); code != 0 || !strings.Contains(out, "repair idle") {
		t.Fatalf("repair.sh start: code %d out %q err %q", code, out, errOut)
	}
	if _, errOut, code := script(t, ep, "repair.sh", "bogus"); code == 0 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("repair.sh bogus: code %d err %q", code, errOut)
	}
	// Failures are one clear line and a non-zero exit.
	if _, errOut, code := script(t, ep, "remove-node.sh", "nope"); code == 0 || !strings.Contains(errOut, "unknown node") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("remove-node.sh nope: code %d err %q", code, errOut)
	}
	if _, errOut, code := script(t, "http://127.0.0.1:1", "health.sh"); code == 0 || !strings.Contains(errOut, "cannot reach") {
		t.Fatalf("health.sh against nothing: code %d err %q", code, errOut)
	}
	c.StopNode(2)
	if out, _, code := script(t, ep, "health.sh"); code == 0 || !strings.Contains(out, "NOT READY") {
		t.Fatalf("health.sh with a node stopped: code %d out %q; want it to fail and say so", code, out)
	}
}
