package tests

import (
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/datanode"
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

// TestFailoverTakeoverIsOneInfoLine: when a node stops, each node that
// takes over its ref partitions logs the takeovers as one INFO line, once
// it serves every partition it leads; each partition's takeover is DEBUG.
func TestFailoverTakeoverIsOneInfoLine(t *testing.T) {
	const summary = `msg="refs: serving ref partitions as primary"`
	logs := map[string]*syncBuffer{"n1": {}, "n2": {}, "n3": {}}
	c := refsCluster(t, 3, 32, func(cfg *datanode.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs[cfg.ID], &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", cfg.ID)
	})
	for _, id := range []string{"n1", "n2", "n3"} {
		Eventually(t, 30*time.Second, id+" logs its start-up summary", func() bool { return strings.Contains(logs[id].String(), summary) })
	}
	marks := map[string]int{"n1": len(logs["n1"].String()), "n2": len(logs["n2"].String())}
	since := func(id string) string { return logs[id].String()[marks[id]:] }
	c.StopNode(2)
	c.waitPartitionsServing(t, 32)
	Eventually(t, 30*time.Second, "a takeover summary after n3 stopped", func() bool {
		return strings.Contains(since("n1")+since("n2"), summary)
	})
	for _, id := range []string{"n1", "n2"} {
		if n := strings.Count(since(id), summary); n > 1 {
			t.Fatalf("%s logged %d takeover summaries after n3 stopped; want at most 1:\n%s", id, n, since(id))
		}
		if n := strings.Count(since(id), `msg="refs: serving as primary"`); n != 0 {
			t.Fatalf("%s logged %d per-partition takeovers at INFO; want 0 (they are DEBUG):\n%s", id, n, since(id))
		}
	}
}
