package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

// script runs scripts/NAME against endpoint and returns its output and exit code.
func script(t *testing.T, endpoint, name string, args ...string) (string, string, int) {
	t.Helper()
	return scriptEnv(t, []string{"STRATUM_ENDPOINT=" + endpoint}, name, args...)
}

// scriptEnv runs scripts/NAME with env added to the environment.
func scriptEnv(t *testing.T, env []string, name string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"../scripts/" + name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return runCmd(t, cmd)
}

// hostileIDs are node IDs that would change the URL they are put in.
var hostileIDs = []string{"n1/remove?force=true#", "n1/drain#", "../n1", "n1 x", "n1%2Fremove"}

// checkHostileIDs: the scripts refuse IDs that are not node IDs before any
// request, and so do the nodes' admin routes (as sent, %2F not decoded);
// n1 is still ACTIVE after.
func checkHostileIDs(t *testing.T, c *Cluster, env []string, token string) {
	t.Helper()
	for _, id := range hostileIDs {
		for _, s := range []string{"remove-node.sh", "drain-node.sh"} {
			if _, errOut, code := scriptEnv(t, env, s, id); code == 0 || !strings.Contains(errOut, "invalid node ID") {
				t.Errorf("%s %q: code %d err %q; want a refusal: invalid node ID", s, id, code, errOut)
			}
		}
	}
	for _, id := range []string{"n1%2F..%2Fn2", "n1%00", "n1%20x", "n%C3%A9"} {
		if status, code := call(t, c.URL(0)+api.PathAdminNodes+"/"+id+"/remove", "POST", token, nil); status != 400 || code != "bad_request" {
			t.Errorf("POST /v1/admin/nodes/%s/remove: got %d %s; want 400 bad_request", id, status, code)
		}
	}
	nodes, err := c.Client(0).Nodes(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == "n1" && n.State != "ACTIVE" {
			t.Fatalf("n1 is %s after the hostile IDs; want ACTIVE", n.State)
		}
	}
}

func TestOpsScripts(t *testing.T) {
	c := MustStartCluster(t, 4, nil)
	for i := 0; i < 20; i++ {
		if _, err := c.Client(0).PutBytes(ctxT(t), randomBytes(int64(7000+i), 300), api.SHA256, api.All); err != nil {
			t.Fatal(err)
		}
	}
	ep := c.URL(0)
	checkHostileIDs(t, c, []string{"STRATUM_ENDPOINT=" + ep}, "")
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

// On a cluster with auth on (stratum datanode's default) the scripts work
// with STRATUM_TOKEN, on every node they call (health.sh and repair.sh
// watch call each node), and the token is never on curl's command line
// (a curl shim on PATH records every command line). Without the token
// they fail with the 401 (issue 21.8).
func TestOpsScriptsWithAuth(t *testing.T) {
	c := mustStartClusterWith(t, 4, func(cfg *datanode.Config) { cfg.Auth = true }, func(c *Cluster) {
		_, c.Token = mustToken(t, c, "ops", api.ScopeAdmin)
	})
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not installed")
	}
	bin, argv := t.TempDir(), filepath.Join(t.TempDir(), "argv")
	shim := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> " + argv + "\nexec " + curl + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "curl"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"STRATUM_ENDPOINT=" + c.URL(0), "STRATUM_TOKEN=" + c.Token, "PATH=" + bin + ":" + os.Getenv("PATH")}
	if out, errOut, code := scriptEnv(t, env, "health.sh"); code != 0 || strings.Count(out, " ready ") != 4 {
		t.Fatalf("health.sh with a token: code %d out %q err %q; want 4 ready nodes", code, out, errOut)
	}
	if out, errOut, code := scriptEnv(t, env, "cluster-status.sh"); code != 0 || strings.Count(out, "ACTIVE") != 4 {
		t.Fatalf("cluster-status.sh with a token: code %d out %q err %q", code, out, errOut)
	}
	if out, errOut, code := scriptEnv(t, env, "repair.sh", "pause"); code != 0 || !strings.Contains(out, "paused") {
		t.Fatalf("repair.sh pause: code %d out %q err %q", code, out, errOut)
	}
	// Each pass of the watch lists the 4 nodes; a slow first pass may be
	// followed by a second one before the 1 s timeout is noticed.
	if out, errOut, code := scriptEnv(t, env, "repair.sh", "watch", "1"); code == 0 || strings.Count(out, "PAUSED") == 0 || strings.Count(out, "PAUSED")%4 != 0 || !strings.Contains(errOut+out, "not idle") {
		t.Fatalf("repair.sh watch while paused: code %d out %q err %q; want each of 4 nodes PAUSED in every pass and a timeout", code, out, errOut)
	}
	if out, errOut, code := scriptEnv(t, env, "repair.sh", "start", "60"); code != 0 || !strings.Contains(out, "repair idle") {
		t.Fatalf("repair.sh start: code %d out %q err %q", code, out, errOut)
	}
	checkHostileIDs(t, c, env, c.Token)
	if out, errOut, code := scriptEnv(t, env, "drain-node.sh", "n4", "60"); code != 0 || !strings.Contains(out, "n4 drained") {
		t.Fatalf("drain-node.sh: code %d out %q err %q", code, out, errOut)
	}
	if out, errOut, code := scriptEnv(t, env, "remove-node.sh", "n4"); code != 0 || !strings.Contains(out, "n4 removed") {
		t.Fatalf("remove-node.sh: code %d out %q err %q", code, out, errOut)
	}
	lines, err := os.ReadFile(argv)
	if err != nil || strings.Count(string(lines), "\n") < 10 {
		t.Fatalf("curl command lines recorded: %q %v; want the scripts' calls", lines, err)
	}
	_, secret, _ := strings.Cut(strings.TrimPrefix(c.Token, "stratum_"), "_")
	if strings.Contains(string(lines), secret) {
		t.Fatalf("the token's secret is on a curl command line (visible in ps):\n%s", lines)
	}
	noToken := []string{"STRATUM_ENDPOINT=" + c.URL(0)}
	if _, errOut, code := scriptEnv(t, noToken, "cluster-status.sh"); code == 0 || !strings.Contains(errOut, "HTTP 401") {
		t.Fatalf("cluster-status.sh without a token: code %d err %q; want HTTP 401", code, errOut)
	}
}
