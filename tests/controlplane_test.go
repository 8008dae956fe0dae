package tests

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/controlplane"
)

// startProcess runs the stratum binary as a real process, killed at cleanup.
func startProcess(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("stratum %v:\n%s", args, out.String())
		}
	})
	return cmd
}

// TestThreeMemberControlPlane forms a 3-member etcd cluster from three
// `stratum controlplane` processes, runs data nodes against it, and keeps
// serving after one member is killed.
func TestThreeMemberControlPlane(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	type member struct{ name, client, peer string }
	var ms []member
	var initial []string
	for _, name := range []string{"a", "b", "c"} {
		m := member{name, fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
		ms = append(ms, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	var procs []*exec.Cmd
	for _, m := range ms {
		procs = append(procs, startProcess(t, bin, "controlplane", "--name", m.name, "--data-dir", filepath.Join(dir, m.name),
			"--listen-client-urls", m.client, "--listen-peer-urls", m.peer, "--initial-cluster", strings.Join(initial, ",")))
	}
	endpoints := ms[0].client + "," + ms[1].client + "," + ms[2].client
	var urls []string
	for i := 1; i <= 3; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		urls = append(urls, "http://"+addr)
		startProcess(t, bin, "datanode", "--id", fmt.Sprintf("n%d", i), "--listen", addr,
			"--data-dir", filepath.Join(dir, fmt.Sprintf("n%d", i)), "--etcd", endpoints, "--zone", fmt.Sprintf("z%d", i))
	}
	waitReady(t, urls...)
	// Auth is on by default outside stratum dev: no token, no write.
	if _, errOut, code := run(t, bin, "object one\n", "--endpoint", urls[0], "put", "-"); code == 0 || !strings.Contains(errOut, "unauthenticated") {
		t.Fatalf("put without a token on a default data node: %d %q; want unauthenticated", code, errOut)
	}
	tok, errOut, code := run(t, bin, "", "token", "create", "--etcd", endpoints, "--scope", "admin", "test")
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errOut)
	}
	token := "--token=" + strings.TrimSpace(tok)
	out, errOut, code := run(t, bin, "object one\n", token, "--endpoint", urls[0], "put", "--consistency", "all", "-")
	if code != 0 {
		t.Fatalf("put: %d %s", code, errOut)
	}
	oid := strings.SplitN(out, "\n", 2)[0]

	procs[0].Process.Signal(syscall.SIGKILL) // one etcd member dies; two of three remain a majority
	if out, errOut, code := run(t, bin, "", token, "--endpoint", urls[1], "get", oid); code != 0 || out != "object one\n" {
		t.Fatalf("get after losing one etcd member: %d %q %s", code, out, errOut)
	}
	if _, errOut, code := run(t, bin, "object two\n", token, "--endpoint", urls[2], "put", "-"); code != 0 {
		t.Fatalf("put after losing one etcd member: %d %s", code, errOut)
	}
	if out, _, code := run(t, bin, "", token, "--endpoint", urls[2], "cluster", "status"); code != 0 || strings.Count(out, "true") < 6 {
		t.Fatalf("cluster status after losing one etcd member: %d\n%s", code, out)
	}
}

// TestKillingDetectorLeaderWhileANodeDies kills the control-plane member
// that leads the failure detector and a data node at the same moment: the
// dead node ends DOWN, no healthy node ever leaves ACTIVE.
func TestKillingDetectorLeaderWhileANodeDies(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	names := []string{"a", "b", "c"}
	var clients, initial []string
	peers := map[string]string{}
	for _, name := range names {
		clients = append(clients, fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
		peers[name] = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		initial = append(initial, name+"="+peers[name])
	}
	timeouts := []string{"--suspect-timeout", "1s", "--down-timeout", "3s"}
	members := map[string]*exec.Cmd{}
	for i, name := range names {
		members["controlplane-"+name] = startProcess(t, bin, append([]string{"controlplane", "--name", name,
			"--data-dir", filepath.Join(dir, name), "--listen-client-urls", clients[i], "--listen-peer-urls", peers[name],
			"--initial-cluster", strings.Join(initial, ",")}, timeouts...)...)
	}
	endpoints := strings.Join(clients, ",")
	var urls []string
	var nodes []*exec.Cmd
	for i := 1; i <= 3; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		urls = append(urls, "http://"+addr)
		nodes = append(nodes, startProcess(t, bin, "datanode", "--id", fmt.Sprintf("n%d", i), "--listen", addr,
			"--data-dir", filepath.Join(dir, fmt.Sprintf("n%d", i)), "--etcd", endpoints, "--lease-ttl", "2s", "--detector=false", "--auth=false"))
	}
	waitReady(t, urls...)
	cp, err := controlplane.Dial(ctxT(t), controlplane.DefaultClientConfig(clients...))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	states := func() map[string]api.MemberState {
		ms, err := cp.Members(ctxT(t))
		if err != nil {
			return nil
		}
		out := map[string]api.MemberState{}
		for id, m := range ms {
			out[id] = m.State
		}
		return out
	}
	Eventually(t, 30*time.Second, "every node ACTIVE", func() bool {
		s := states()
		return s["n1"] == api.StateActive && s["n2"] == api.StateActive && s["n3"] == api.StateActive
	})
	var leader string
	Eventually(t, 30*time.Second, "a detector leader", func() bool {
		leader, _ = cp.DetectorLeader(ctxT(t))
		return members[leader] != nil
	})
	members[leader].Process.Signal(syscall.SIGKILL)
	nodes[2].Process.Signal(syscall.SIGKILL)

	deadline := time.Now().Add(60 * time.Second)
	for {
		s := states()
		if s != nil && (s["n1"] != api.StateActive || s["n2"] != api.StateActive) {
			t.Fatalf("a healthy node left ACTIVE after the leader was killed: %v", s)
		}
		if s["n3"] == api.StateDown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n3 not DOWN 60s after it was killed: %v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if now, _ := cp.DetectorLeader(ctxT(t)); now == leader || now == "" {
		t.Fatalf("detector leader after the kill: %q (was %q); want another member", now, leader)
	}
	// Restarted, n3 comes back under a new generation and turns ACTIVE.
	startProcess(t, bin, nodes[2].Args[1:]...)
	Eventually(t, 30*time.Second, "n3 ACTIVE after restart", func() bool { return states()["n3"] == api.StateActive })
}
