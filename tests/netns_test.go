package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
)

// A network of hosts made of Linux network namespaces, one per stratum
// process, each with its own address on a bridge the test creates, so a
// test can cut real links with iptables inside a host's namespace. The
// test process reaches every host from the root namespace through the
// bridge. Addresses are 10.77.<net>.0/24, used only inside namespaces and
// on the bridge this test creates; nothing leaves the machine.

// netHost is one namespace.
type netHost struct {
	ns, ip string
	veth   string // its link's end in the root namespace, on the bridge
}

// netLab owns the bridge and namespaces of one test.
type netLab struct {
	t      *testing.T
	bridge string
	subnet string
	hosts  map[string]*netHost
}

func sh(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// newNetLab creates the bridge, or fails the test with the reason when the
// machine cannot (not root, no iproute2 or iptables): a fault test that
// cannot inject its faults must not pass.
func newNetLab(t *testing.T) *netLab {
	t.Helper()
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("network fault tests need %s (Debian: iproute2, iptables; .ci/run installs them): %v", tool, err)
		}
	}
	// Tests in other test binaries may run labs at the same time: take the
	// first free bridge index from a per-process starting point (creating
	// the bridge is the lock). Indices 200-254 only: an older newNetLab,
	// still run from other worktrees, took pid%200 and deleted whatever
	// bridge and namespaces had that index.
	lab := &netLab{t: t, hosts: map[string]*netHost{}}
	var err error
	for i := 0; i < 55; i++ {
		id := 200 + (os.Getpid()+i)%55
		lab.bridge, lab.subnet = fmt.Sprintf("stbr%d", id), fmt.Sprintf("10.77.%d", id)
		if _, err = sh("ip", "link", "add", lab.bridge, "type", "bridge"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("cannot create a bridge (network fault tests need root and network namespaces): %v", err)
	}
	// With bridge-nf-call-iptables on (Docker turns it on), bridged frames
	// pass the root namespace's FORWARD chain, whose policy Docker sets to
	// DROP: let this bridge's own traffic through, and only it.
	accept := []string{"FORWARD", "-i", lab.bridge, "-o", lab.bridge, "-j", "ACCEPT"}
	t.Cleanup(func() {
		for _, h := range lab.hosts {
			// Deleting the veth now: a deleted namespace is torn down
			// asynchronously, and the next lab may reuse the names.
			sh("ip", "link", "del", h.veth)
			sh("ip", "netns", "del", h.ns)
		}
		sh(append([]string{"iptables", "-D"}, accept...)...)
		sh("ip", "link", "del", lab.bridge)
	})
	must(t, append([]string{"iptables", "-I"}, accept...)...)
	must(t, "ip", "addr", "add", lab.subnet+".1/24", "dev", lab.bridge)
	must(t, "ip", "link", "set", lab.bridge, "up")
	return lab
}

func must(t *testing.T, args ...string) {
	t.Helper()
	if _, err := sh(args...); err != nil {
		t.Fatal(err)
	}
}

// host creates a namespace named after name with the next address.
func (l *netLab) host(name string) *netHost {
	l.t.Helper()
	n := len(l.hosts) + 10
	veth, peer := fmt.Sprintf("%sv%d", l.bridge, n), fmt.Sprintf("%sp%d", l.bridge, n)
	h := &netHost{ns: fmt.Sprintf("%s-%s", l.bridge, name), ip: fmt.Sprintf("%s.%d", l.subnet, n), veth: veth}
	sh("ip", "link", "del", veth) // a leftover of this bridge's last lab
	sh("ip", "netns", "del", h.ns)
	must(l.t, "ip", "netns", "add", h.ns)
	l.hosts[name] = h
	must(l.t, "ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
	must(l.t, "ip", "link", "set", veth, "master", l.bridge, "up")
	must(l.t, "ip", "link", "set", peer, "netns", h.ns)
	must(l.t, "ip", "-n", h.ns, "link", "set", peer, "name", "eth0")
	must(l.t, "ip", "-n", h.ns, "addr", "add", h.ip+"/24", "dev", "eth0")
	must(l.t, "ip", "-n", h.ns, "link", "set", "eth0", "up")
	must(l.t, "ip", "-n", h.ns, "link", "set", "lo", "up")
	return h
}

// cut drops all traffic between host a and each of others, in a's
// namespace (both directions).
func (l *netLab) cut(a string, others ...string) {
	l.t.Helper()
	for _, o := range others {
		ip := l.hosts[o].ip
		must(l.t, "ip", "netns", "exec", l.hosts[a].ns, "iptables", "-A", "INPUT", "-s", ip, "-j", "DROP")
		must(l.t, "ip", "netns", "exec", l.hosts[a].ns, "iptables", "-A", "OUTPUT", "-d", ip, "-j", "DROP")
	}
}

// heal removes every rule of every host.
func (l *netLab) heal() {
	l.t.Helper()
	for _, h := range l.hosts {
		must(l.t, "ip", "netns", "exec", h.ns, "iptables", "-F")
	}
}

// netClusterConfig shapes a namespace cluster.
type netClusterConfig struct {
	Nodes, Partitions int
	// NodeArgs are extra datanode flags.
	NodeArgs []string
	// Proxied puts a delay proxy (the test's own, in the node's namespace)
	// in front of each data node: the node listens on port 9001 and
	// advertises the proxy's port 9000, so every request to it, from peers
	// and clients alike, crosses the proxy.
	Proxied bool
	// Chaos gives each data node what the chaos nemesis needs: its own
	// tmpfs of DiskSize (its data directory is "data" inside it, so a
	// wipe leaves the mount) and a --clock-skew-file.
	Chaos bool
}

// chaosDiskSize is each chaos node's tmpfs: room for a run's objects, and
// small enough to fill in a moment.
const chaosDiskSize = "1g"

// diskOf is the tmpfs mount a chaos node's data directory sits in.
func diskOf(n *procNode) string { return filepath.Dir(n.Dir) }

// skewFileOf is the chaos node's --clock-skew-file.
func skewFileOf(n *procNode) string { return filepath.Join(filepath.Dir(diskOf(n)), n.ID+"-skew") }

// startNetCluster runs a control plane member and n data nodes, each in its
// own namespace, and returns them as a procCluster whose URLs are the
// namespaces' addresses.
func startNetCluster(t *testing.T, lab *netLab, nodes, partitions int) *procCluster {
	return startNetClusterWith(t, lab, netClusterConfig{Nodes: nodes, Partitions: partitions})
}

func startNetClusterWith(t *testing.T, lab *netLab, cfg netClusterConfig) *procCluster {
	t.Helper()
	c := &procCluster{t: t, bin: buildBinary(t), dir: t.TempDir(), proxies: map[string]*delayProxy{}}
	cp := lab.host("cp")
	clientURL, peerURL := "http://"+cp.ip+":2379", "http://"+cp.ip+":2380"
	startProcess(t, "ip", "netns", "exec", cp.ns, c.bin, "--log-level", "warn", "controlplane", "--name", "cp",
		"--data-dir", filepath.Join(c.dir, "cp"), "--listen-client-urls", clientURL, "--listen-peer-urls", peerURL,
		"--initial-cluster", "cp="+peerURL, "--suspect-timeout", "1s", "--down-timeout", "3s",
		"--partitions", fmt.Sprint(cfg.Partitions), "--plan-interval", "200ms")
	for i := 1; i <= cfg.Nodes; i++ {
		id := fmt.Sprintf("n%d", i)
		h := lab.host(id)
		n := &procNode{ID: id, Addr: h.ip + ":9000", Dir: filepath.Join(c.dir, id), prog: "ip"}
		var extra []string
		if cfg.Chaos {
			mnt := filepath.Join(c.dir, id+"-disk")
			must(t, "mkdir", "-p", mnt)
			must(t, "mount", "-t", "tmpfs", "-o", "size="+chaosDiskSize, "tmpfs", mnt)
			t.Cleanup(func() { sh("umount", "-l", mnt) }) // after the process is killed (cleanups run last first)
			n.Dir = filepath.Join(mnt, "data")
			extra = append(extra, "--clock-skew-file", skewFileOf(n))
		}
		listen := n.Addr
		if cfg.Proxied {
			listen = h.ip + ":9001"
			c.proxies[id] = startDelayProxy(t, h.ns, n.Addr, listen)
		}
		n.args = append([]string{"netns", "exec", h.ns, c.bin, "--log-level", "warn", "datanode", "--id", id, "--listen", listen,
			"--advertise", n.Addr, "--data-dir", n.Dir, "--etcd", clientURL, "--lease-ttl", "2s", "--detector=false", "--auth=false"}, append(cfg.NodeArgs, extra...)...)
		c.Nodes = append(c.Nodes, n)
		c.start(n)
	}
	c.settle(clientURL, cfg.Partitions)
	return c
}

// TestPartitionsKeepRefsLinearizableAndObjectsDurable runs the ref workload
// of TestRefsLinearizableUnderFaults and a stream of quorum object writes
// while real network partitions come and go: a partition primary isolated
// from everyone, a bridge (two nodes cut from each other, a third seeing
// both), then a data node cut from etcd only (it still talks to its peers). After healing, the ref history must be linearizable and every
// acknowledged object readable at quorum, byte for byte.
func TestPartitionsKeepRefsLinearizableAndObjectsDurable(t *testing.T) {
	lab := newNetLab(t)
	c := startNetCluster(t, lab, 3, 8)
	keys := linKeys()
	stopLoad, wait, rec := runLinWorkload(c, keys, time.Now().UnixNano())
	objects := startObjectWriter(t, c)

	time.Sleep(2 * time.Second)
	victim := c.primaryOf(keys[0].repo).Primary
	others := []string{"cp"}
	for _, n := range c.Nodes {
		if n.ID != victim {
			others = append(others, n.ID)
		}
	}
	t.Logf("isolating %s (a partition primary) from %v for 6s", victim, others)
	lab.cut(victim, others...)
	time.Sleep(6 * time.Second)
	lab.heal()
	waitHealthy(t, c, victim)

	// A bridge: n1 and n3 cannot talk, n2 and etcd see both.
	t.Logf("bridge: n1 and n3 cut from each other for 6s, n2 and etcd see both")
	lab.cut("n1", "n3")
	time.Sleep(6 * time.Second)
	lab.heal()

	cutOff := c.Nodes[1].ID
	t.Logf("cutting %s from etcd only for 6s", cutOff)
	lab.cut(cutOff, "cp")
	time.Sleep(6 * time.Second)
	lab.heal()
	waitHealthy(t, c, cutOff)
	time.Sleep(2 * time.Second)

	stopLoad()
	wait()
	acked := objects.stop()
	checkLinearizable(t, rec.Ops())
	verifyObjects(t, c, acked)
}

func waitHealthy(t *testing.T, c *procCluster, id string) {
	t.Helper()
	n := c.node(id)
	if c.recover(n) {
		t.Logf("%s was fenced (declared DOWN while cut off); restarted it as a supervisor would", id)
	}
}

// recover waits until n is healthy again after a fault; a node declared
// DOWN meanwhile is fenced for good, so it is restarted, as a supervisor
// (systemd) would. It reports whether it restarted n.
func (c *procCluster) recover(n *procNode) bool {
	restarted := !c.healthyWithin(n, 20*time.Second)
	if restarted {
		n.cmd.Process.Kill()
		n.cmd.Wait()
		c.start(n)
	}
	waitReady(c.t, n.URL())
	return restarted
}

// objectWriter writes unique objects at quorum through random nodes and
// remembers the acknowledged ones.
type objectWriter struct {
	stopc chan struct{}
	done  chan map[api.OID][]byte
}

func startObjectWriter(t *testing.T, c *procCluster) *objectWriter {
	w := &objectWriter{stopc: make(chan struct{}), done: make(chan map[api.OID][]byte, 1)}
	go func() {
		acked := map[api.OID][]byte{}
		for i := 0; ; i++ {
			select {
			case <-w.stopc:
				w.done <- acked
				return
			case <-time.After(20 * time.Millisecond):
			}
			data := []byte(fmt.Sprintf("object %d written under partitions, %d", i, time.Now().UnixNano()))
			cl := c.client(c.Nodes[i%len(c.Nodes)])
			if r, err := cl.PutBytes(ctxT(t), data, api.SHA256, api.Quorum); err == nil {
				acked[api.MustParseOID(r.OID)] = data
			}
		}
	}()
	return w
}

func (w *objectWriter) stop() map[api.OID][]byte {
	close(w.stopc)
	return <-w.done
}

// verifyObjects reads every acknowledged object at quorum and compares it.
func verifyObjects(t *testing.T, c *procCluster, acked map[api.OID][]byte) {
	t.Helper()
	if len(acked) < 50 {
		t.Fatalf("only %d objects acknowledged: the workload did not run", len(acked))
	}
	if lost := lostObjects(c, acked); len(lost) > 0 {
		t.Fatalf("%d acknowledged writes lost, first: %s", len(lost), lost[0])
	}
	t.Logf("%d acknowledged objects all read back at quorum", len(acked))
}

// lostObjects reads every acknowledged object at quorum, four at a time,
// and describes those that do not read back byte for byte. A read that
// fails without an answer about the object (a timeout, too few replicas)
// is retried a few times first.
func lostObjects(c *procCluster, acked map[api.OID][]byte) []string {
	cl, _ := client.New(client.Config{Endpoint: c.Nodes[0].URL(), Timeout: 30 * time.Second})
	oids := make(chan api.OID)
	var mu sync.Mutex
	var lost []string
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for oid := range oids {
				if err := readBack(cl, oid, acked[oid]); err != nil {
					mu.Lock()
					lost = append(lost, fmt.Sprintf("%s (%d bytes): %v", oid, len(acked[oid]), err))
					mu.Unlock()
				}
			}
		}()
	}
	for oid := range acked {
		oids <- oid
	}
	close(oids)
	wg.Wait()
	return lost
}

func readBack(cl *client.Client, oid api.OID, want []byte) error {
	var err error
	for try := 0; try < 5; try++ {
		var got []byte
		got, err = cl.GetBytes(context.Background(), oid, api.Quorum)
		switch {
		case err == nil && bytes.Equal(got, want):
			return nil
		case err == nil:
			return fmt.Errorf("read %d bytes that differ from the acknowledged ones", len(got))
		case errors.Is(err, api.ErrNotFound), errors.Is(err, api.ErrDigestMismatch):
			return err
		}
		time.Sleep(time.Second)
	}
	return err
}

// A partition primary cut from etcd and its peers, but not from clients,
// hears of no promotion and no fence: only its lease stops it. Once a new
// primary has acknowledged a newer value, the old one must refuse reads
// and writes sent straight to it instead of answering from its stale state.
// This is the test that catches the planted stratum_bug_nolease.
func TestPrimaryCutFromEtcdServesNoStaleReads(t *testing.T) {
	lab := newNetLab(t)
	c := startNetCluster(t, lab, 3, 8)
	repo, ref := "cut/repo", "refs/heads/main"
	old := c.primaryOf(repo).Primary
	cl := c.client(c.other(old))
	ctx := ctxT(t)
	v1, v2 := strings.Repeat("1", 40), strings.Repeat("2", 40)
	if _, err := cl.RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: api.ZeroOID, New: v1}}}, false); err != nil {
		t.Fatal(err)
	}
	cutFrom := []string{"cp"}
	for _, n := range c.Nodes {
		if n.ID != old {
			cutFrom = append(cutFrom, n.ID)
		}
	}
	lab.cut(old, cutFrom...)
	cutAt := time.Now()
	Eventually(t, 60*time.Second, "the partition promoted away from "+old, func() bool {
		return c.primaryOf(repo).Primary != old
	})
	Eventually(t, 60*time.Second, "a new primary acknowledges v1 -> v2", func() bool {
		_, err := cl.RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: v1, New: v2}}}, false)
		return err == nil
	})
	t.Logf("%s cut from etcd and its peers; a new primary acknowledged v2 %s later", old, time.Since(cutAt).Round(time.Millisecond))
	addr := c.node(old).Addr
	status, body, err := rawRef(ctx, "GET", addr, api.PathRepos+repo+"/"+ref, "")
	t.Logf("old primary answered the GET: %d %s", status, strings.TrimSpace(body))
	if err != nil || status != 503 || !strings.Contains(body, "not_primary") {
		t.Fatalf("GET straight from the old primary: %d %s %v; want 503 not_primary (it must not serve v1)", status, body, err)
	}
	status, body, err = rawRef(ctx, "POST", addr, api.PathRepos+repo+"/refs?require_objects=false",
		fmt.Sprintf(`{"updates":[{"name":%q,"old":%q,"new":%q}]}`, ref, v1, strings.Repeat("f", 40)))
	if err != nil || status == 200 || status == 409 {
		t.Fatalf("POST straight to the old primary: %d %s %v; want a refusal", status, body, err)
	}
	lab.heal()
	waitHealthy(t, c, old)
	if got, err := cl.GetRef(ctx, repo, ref); err != nil || got != v2 {
		t.Fatalf("after healing the ref is %s (%v); want %s", got, err, v2)
	}
}
