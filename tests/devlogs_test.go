package tests

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDevStartupLogIsShort: `stratum dev` with 3 nodes, at the default log
// level, prints a handful of INFO lines until every node is ready and serves
// the ref partitions it leads (etcd ready, each node started, one summary of
// partitions served per node); per-partition events are DEBUG.
func TestDevStartupLogIsShort(t *testing.T) {
	const maxInfo = 15
	bin := buildBinary(t)
	base := freePorts(t, 3)
	var stdout, stderr syncBuffer
	cmd := exec.Command(bin, "dev", "--dir", t.TempDir(), "--base-port", fmt.Sprint(base), "--nodes", "3",
		"--etcd-client-port", fmt.Sprint(freePort(t)), "--etcd-peer-port", fmt.Sprint(freePort(t)))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	Eventually(t, 90*time.Second, "stratum dev prints ready", func() bool { return strings.Contains(stdout.String(), "ready") })
	var urls []string
	for i := range 3 {
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", base+i))
	}
	waitReady(t, urls...)
	Eventually(t, 30*time.Second, "one partition summary per node", func() bool {
		return strings.Count(stderr.String(), `msg="refs: serving ref partitions as primary"`) >= 3
	})
	var info []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "level=INFO") {
			info = append(info, line)
		}
	}
	if len(info) > maxInfo {
		t.Fatalf("stratum dev start-up printed %d INFO lines; want at most %d:\n%s", len(info), maxInfo, strings.Join(info, "\n"))
	}
	for _, must := range []string{"etcd member ready", "data node started"} {
		if !strings.Contains(strings.Join(info, "\n"), must) {
			t.Fatalf("start-up INFO lines lack %q:\n%s", must, strings.Join(info, "\n"))
		}
	}
	t.Logf("%d INFO lines at start-up:\n%s", len(info), strings.Join(info, "\n"))
}
