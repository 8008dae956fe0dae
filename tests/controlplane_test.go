package tests

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
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
	out, errOut, code := run(t, bin, "object one\n", "--endpoint", urls[0], "put", "--consistency", "all", "-")
	if code != 0 {
		t.Fatalf("put: %d %s", code, errOut)
	}
	oid := strings.SplitN(out, "\n", 2)[0]

	procs[0].Process.Signal(syscall.SIGKILL) // one etcd member dies; two of three remain a majority
	if out, errOut, code := run(t, bin, "", "--endpoint", urls[1], "get", oid); code != 0 || out != "object one\n" {
		t.Fatalf("get after losing one etcd member: %d %q %s", code, out, errOut)
	}
	if _, errOut, code := run(t, bin, "object two\n", "--endpoint", urls[2], "put", "-"); code != 0 {
		t.Fatalf("put after losing one etcd member: %d %s", code, errOut)
	}
	if out, _, code := run(t, bin, "", "--endpoint", urls[2], "cluster", "status"); code != 0 || strings.Count(out, "true") < 6 {
		t.Fatalf("cluster status after losing one etcd member: %d\n%s", code, out)
	}
}
