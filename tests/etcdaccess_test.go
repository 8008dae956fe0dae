package tests

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/cli"
	"github.com/stratum-store/stratum/controlplane"
	"github.com/stratum-store/stratum/datanode"
)

// accessCluster starts an etcd with access control on, a detector and
// planner running as root, and n data nodes, each reaching etcd as its own
// user (controlplane.NodeUser). It returns the cluster (whose CP is root)
// and each node's etcd client.
func accessCluster(t *testing.T, n, partitions int) (*Cluster, map[string]*controlplane.Client) {
	t.Helper()
	ctx := ctxT(t)
	c := &Cluster{t: t, dir: t.TempDir()}
	c.startEtcd()
	if err := c.CP.EnableAccess(ctx, "root-secret"); err != nil {
		t.Fatalf("EnableAccess: %v", err)
	}
	if _, err := c.CP.Members(ctx); err == nil {
		t.Fatal("etcd still answers a client without credentials after EnableAccess")
	}
	dial := func(user, pw string) *controlplane.Client {
		cfg := controlplane.DefaultClientConfig(c.Member.ClientURLs()...)
		cfg.Username, cfg.Password = user, pw
		cp, err := controlplane.Dial(ctx, cfg)
		if err != nil {
			t.Fatalf("dial etcd as %s: %v", user, err)
		}
		t.Cleanup(func() { cp.Close() })
		return cp
	}
	c.CP = dial(controlplane.RootUser, "root-secret")
	nodes := map[string]*controlplane.Client{}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		if err := c.CP.GrantNode(ctx, id, "pw-"+id); err != nil {
			t.Fatalf("GrantNode %s: %v", id, err)
		}
		nodes[id] = dial(controlplane.NodeUser(id), "pw-"+id)
	}
	c.Tune = func(cfg *datanode.Config) {
		cfg.Control = cli.NewControlPlane(nodes[cfg.ID])
		cfg.RefCheckInterval = 200 * time.Millisecond
		cfg.LeaseTTL = 4 * time.Second // this test is not about failures: ride out a slow disk under CI load
	}
	// As root: the only one that may write the ring. Slower to declare a
	// node DOWN than the other tests' detectors, for the same reason.
	dcfg := fastDetectorConfig("controlplane")
	dcfg.SuspectTimeout, dcfg.DownTimeout = 3*time.Second, 15*time.Second
	dcfg.Planner = controlplane.PlannerConfig{Partitions: api.PartitionConfig{Count: partitions, Replicas: 3},
		Interval: 200 * time.Millisecond, CreateDelay: time.Second, PromoteWait: 6 * time.Second}
	c.runDetector(t, dcfg)
	for i := 0; i < n; i++ {
		c.AddNode()
	}
	c.WaitRingConverged()
	c.waitPartitionsServing(t, partitions)
	return c, nodes
}

// writable reports whether cp's credentials may write key, without
// changing it: etcd checks every operation of a transaction against the
// caller's permissions whether or not its condition holds, so a put
// behind a condition that cannot hold is refused only for lack of
// permission.
func writable(t *testing.T, cp *controlplane.Client, key string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := cp.Etcd().Txn(ctx).If(clientv3.Compare(clientv3.Value(key), "=", "\x00never\x00")).
		Then(clientv3.OpPut(key, "forged")).Commit()
	switch {
	case err == nil:
		return true
	case controlplane.IsPermissionDenied(err):
		return false
	}
	t.Fatalf("txn on %s: %v", key, err)
	return false
}

// With etcd access control on, a data node's etcd user may write its own
// records and the ref partition records, and nothing else: not the ring,
// not another node's records, not the tokens or the cluster secret.
// The cluster still forms (the control plane adds each node to the ring at
// its request), replicates objects and commits ref transactions; a node
// cannot register under another node's ID, cannot campaign for the
// detector, and admin actions through a node answer 403; a drain as root
// moves partitions while the nodes keep their leases.
func TestNodeEtcdCredentialsCannotWriteTheRing(t *testing.T) {
	const partitions = 8
	c, nodes := accessCluster(t, 4, partitions)
	ctx := ctxT(t)
	r, err := c.CP.LoadRing(ctx)
	if err != nil || r.Len() != 4 {
		t.Fatalf("ring: %v %v; want the 4 nodes the control plane added", r, err)
	}

	// The data path works with scoped credentials.
	cl := c.Client(0)
	data := []byte("scoped etcd credentials")
	oid, _ := api.Digest(api.SHA256, data)
	if _, err := cl.PutBytes(ctx, data, api.SHA256, api.All); err != nil {
		t.Fatalf("put at all: %v", err)
	}
	if got, err := c.Client(3).GetBytes(ctx, oid, api.Quorum); err != nil || string(got) != string(data) {
		t.Fatalf("get: %q %v", got, err)
	}
	txn := api.RefTxn{Updates: []api.RefUpdate{{Name: "refs/heads/main", Old: api.ZeroOID, New: strings.Repeat("a", 40)}}}
	for i := range 6 {
		if _, err := cl.RefTxn(ctx, fmt.Sprintf("acl/repo%d", i), txn, false); err != nil {
			t.Fatalf("ref txn: %v", err)
		}
	}

	// What n1's user may and may not write.
	n1 := nodes["n1"]
	key := func(parts ...string) string { return "/stratum/" + strings.Join(parts, "/") }
	var parts map[int]api.Partition
	Eventually(t, 30*time.Second, "the planner gives n4 partitions that n1 is not in", func() bool {
		parts, err = c.CP.Partitions(ctx)
		return err == nil && slices.ContainsFunc(slices.Collect(maps.Values(parts)), func(p api.Partition) bool {
			return !slices.Contains(p.Replicas, "n1") && p.IsInSync("n4")
		})
	})
	var mine, others []string
	for id, p := range parts {
		k := key("partitions", "p", fmt.Sprintf("%05d", id))
		if slices.Contains(p.Replicas, "n1") {
			mine = append(mine, k)
		} else {
			others = append(others, k)
		}
	}
	if len(mine) == 0 || len(others) == 0 {
		t.Fatalf("want partitions with and without n1 among 4 nodes: mine %v others %v", mine, others)
	}
	// Its own records, and the ref partition records (a primary updates
	// its partition's record itself; docs/security.md says why every
	// partition and not only its own).
	for _, k := range []string{key("nodes", "n1"), key("members", "n1"), key("joins", "n1"), mine[0], others[0]} {
		if !writable(t, n1, k) {
			t.Errorf("n1 may not write %s", k)
		}
	}
	for _, k := range []string{key("ring"), key("members", "n2"), key("nodes", "n2"), key("joins", "n2"),
		key("tokens", "abc"), key("cluster-secret"), key("repair", "paused"), key("partitions", "config"), key("detector", "x")} {
		if writable(t, n1, k) {
			t.Errorf("n1's etcd user may write %s", k)
		}
	}
	if err := n1.SetRepairPaused(ctx, true); !controlplane.IsPermissionDenied(err) {
		t.Errorf("n1 pausing repair cluster-wide: %v; want permission denied", err)
	}
	if _, err := n1.Etcd().Delete(ctx, key("nodes", "n2")); !controlplane.IsPermissionDenied(err) {
		t.Errorf("n1 deleting n2's liveness record: %v; want permission denied", err)
	}
	// Reads stay open: the node needs the ring, members, tokens.
	if _, err := n1.LoadRing(ctx); err != nil {
		t.Errorf("n1 reading the ring: %v", err)
	}

	// A process with n1's credentials cannot register as another node.
	impostor := c.NodeConfig(0)
	impostor.ID, impostor.ListenAddr, impostor.Store.Dir = "n9", fmt.Sprintf("127.0.0.1:%d", freePort(t)), filepath.Join(c.dir, "n9")
	impostor.Control = cli.NewControlPlane(n1)
	if n9, err := datanode.New(impostor); err != nil {
		t.Fatal(err)
	} else {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := n9.Start(sctx)
		cancel()
		n9.Close(context.Background())
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("a node registering as n9 with n1's etcd user: %v; want permission denied", err)
		}
	}
	if m, ok, _ := c.CP.Member(ctx, "n9"); ok {
		t.Errorf("n9 has a member record: %+v", m)
	}

	// A node's user may not campaign: the root detector stays leader.
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	n1.RunDetector(dctx, fastDetectorConfig("n1-detector"))
	dcancel()
	if leader, err := c.CP.DetectorLeader(ctx); err != nil || leader != "controlplane" {
		t.Errorf("detector leader %q (%v); want the control plane's", leader, err)
	}

	// Admin actions through a node need the control plane's credentials.
	status, code := call(t, c.URL(0)+api.PathAdminNodes+"/n4/drain", "POST", "", nil)
	if status != 403 || code != "forbidden" {
		t.Errorf("drain through n1's admin API: %d %s; want 403 forbidden", status, code)
	}
	if status, code := call(t, c.URL(0)+api.PathAdminRebalance+"/pause", "POST", "", nil); status != 403 || code != "forbidden" {
		t.Errorf("repair pause through n1's admin API: %d %s; want 403 forbidden", status, code)
	}

	// Draining n4 as root moves its partitions away.
	if err := c.CP.Drain(ctx, "n4"); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 60*time.Second, "n4 in no partition", func() bool {
		parts, err := c.CP.Partitions(ctx)
		if err != nil {
			return false
		}
		for _, p := range parts {
			if slices.Contains(p.Replicas, "n4") {
				return false
			}
		}
		return true
	})
	for i := range 6 {
		if got, err := cl.GetRef(ctx, fmt.Sprintf("acl/repo%d", i), "refs/heads/main"); err != nil || got != strings.Repeat("a", 40) {
			t.Errorf("ref after the moves: %q %v", got, err)
		}
	}

	// Revoking n4's user cuts it off from etcd entirely.
	if err := c.CP.RevokeNode(ctx, "n4"); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes["n4"].Members(ctx); err == nil {
		t.Error("n4 still reads etcd after its user was deleted")
	}
	if err := c.CP.RevokeNode(ctx, "n4"); !errors.Is(err, controlplane.ErrUnknownNode) {
		t.Errorf("revoking n4 twice: %v; want ErrUnknownNode", err)
	}
}

// TestAccessCLIWithTheBinary drives the documented setup with processes:
// `stratum access enable` on a running control plane, which is restarted
// as root; `stratum access node` for three data nodes started with their
// own users; objects and admin actions through the CLI, where a drain
// through a node is refused and the same drain straight to etcd as root
// works; and the one-line errors of the access commands.
func TestAccessCLIWithTheBinary(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cpArgs := []string{"--log-level", "info", "controlplane", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", client, "--listen-peer-urls", peer, "--partitions", "8", "--plan-interval", "200ms",
		"--suspect-timeout", "5s", "--down-timeout", "30s"} // not a failure test: ride out a slow machine
	cp := startProcess(t, bin, cpArgs...)
	etcd := "--etcd=" + client
	rootPW := filepath.Join(dir, "root.pw")
	Eventually(t, 30*time.Second, "etcd answers", func() bool {
		_, _, code := run(t, bin, "", "token", "list", etcd)
		return code == 0
	})
	out, errOut, code := run(t, bin, "", "access", "enable", etcd, "--root-password-file", rootPW)
	if code != 0 || !strings.Contains(out, "written to") {
		t.Fatalf("access enable: %d %q %q", code, out, errOut)
	}
	if fi, err := os.Stat(rootPW); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root password file: %v %v; want mode 0600", fi, err)
	}
	// Without credentials etcd now refuses, with a one-line error.
	if _, errOut, code := run(t, bin, "", "token", "list", etcd); code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("token list without credentials after enable: %d %q; want a one-line failure", code, errOut)
	}
	root := []string{etcd, "--etcd-user", "root", "--etcd-password-file", rootPW}
	cp.Process.Signal(syscall.SIGTERM)
	cp.Wait()
	startProcess(t, bin, append(cpArgs, "--etcd-user", "root", "--etcd-password-file", rootPW)...)

	var urls []string
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		pw := filepath.Join(dir, id+".pw")
		if out, errOut, code := run(t, bin, "", append([]string{"access", "node", "--password-file", pw}, append(root, id)...)...); code != 0 ||
			!strings.Contains(out, "stratum-node-"+id) {
			t.Fatalf("access node %s: %d %q %q", id, code, out, errOut)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		urls = append(urls, "http://"+addr)
		startProcess(t, bin, "--log-level", "info", "datanode", "--id", id, "--listen", addr, "--data-dir", filepath.Join(dir, id),
			etcd, "--etcd-user", "stratum-node-"+id, "--etcd-password-file", pw, "--detector=false", "--auth=false", "--lease-ttl", "4s")
	}
	waitReady(t, urls...)
	blob := "blob 6\x00scoped"
	out, errOut, code = run(t, bin, blob, "--endpoint", urls[0], "put", "--sha1", "--consistency", "all", "-")
	if code != 0 {
		t.Fatalf("put: %d %q %q", code, out, errOut)
	}
	oid := strings.SplitN(out, "\n", 2)[0]
	if got, errOut, code := run(t, bin, "", "--endpoint", urls[2], "get", oid); code != 0 || got != blob {
		t.Fatalf("get: %d %q %q", code, got, errOut)
	}
	_, errOut, code = run(t, bin, "", "--endpoint", urls[0], "node", "drain", "n3")
	if code == 0 || !strings.Contains(errOut, "forbidden") || !strings.Contains(errOut, "--etcd") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("node drain through a node: %d %q; want a one-line forbidden error pointing at --etcd", code, errOut)
	}
	if out, errOut, code := run(t, bin, "", append([]string{"node", "drain"}, append(root, "n3")...)...); code != 0 || !strings.Contains(out, "drain ok") {
		t.Fatalf("node drain --etcd as root: %d %q %q", code, out, errOut)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"access", "node", etcd, "--password-file", filepath.Join(dir, "x.pw"), "n4"}, ""},
		{append([]string{"access", "node", "--password-file", filepath.Join(dir, "x.pw")}, append(root, "bad/id")...), "node ID"},
		{append([]string{"access", "revoke"}, append(root, "n9")...), "no etcd user"},
		{[]string{"access", "enable", etcd, "--root-password-file", rootPW, "--etcd-user", "root"}, "go together"},
	} {
		out, errOut, code := run(t, bin, "", bad.args...)
		if code == 0 || !strings.Contains(errOut, bad.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("stratum %v: code %d out %q err %q; want a one-line error containing %q", bad.args, code, out, errOut, bad.want)
		}
	}
}
