package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/controlplane"
)

// procCluster is a control plane member (embedded etcd, failure detector
// and partition planner) and data nodes, each a real stratum process, for
// tests about crashes and pauses.
type procCluster struct {
	t       *testing.T
	bin     string
	dir     string
	etcdURL string
	CP      *controlplane.Client
	Nodes   []*procNode
	// proxies are the delay proxies in front of the nodes, by ID, when the
	// cluster was started with them (netClusterConfig.Proxied).
	proxies map[string]*delayProxy
}

type procNode struct {
	ID   string
	Addr string
	Dir  string // data directory
	prog string // what runs args: the stratum binary, or "ip" for a namespace
	args []string
	cmd  *exec.Cmd
}

func (n *procNode) URL() string { return "http://" + n.Addr }

// startProcCluster starts the processes and waits until all partitions are
// served. Data nodes get extra as further flags.
func startProcCluster(t *testing.T, nodes, partitions int, extra ...string) *procCluster {
	t.Helper()
	c := launchProcCluster(t, nodes, partitions, extra...)
	c.settle(c.etcdURL, partitions)
	return c
}

// launchProcCluster starts the processes without waiting for anything.
func launchProcCluster(t *testing.T, nodes, partitions int, extra ...string) *procCluster {
	t.Helper()
	c := &procCluster{t: t, bin: buildBinary(t), dir: t.TempDir()}
	c.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	startProcess(t, c.bin, "--log-level", "warn", "controlplane", "--name", "cp", "--data-dir", filepath.Join(c.dir, "cp"),
		"--listen-client-urls", c.etcdURL, "--listen-peer-urls", peerURL, "--initial-cluster", "cp="+peerURL,
		"--suspect-timeout", "1s", "--down-timeout", "3s", "--partitions", fmt.Sprint(partitions), "--plan-interval", "200ms")
	for i := 0; i < nodes; i++ {
		c.addNode(extra...)
	}
	return c
}

// addNode starts one more data node process (n1, n2, ...) with extra
// flags, without waiting for it.
func (c *procCluster) addNode(extra ...string) *procNode {
	n := &procNode{ID: fmt.Sprintf("n%d", len(c.Nodes)+1), Addr: fmt.Sprintf("127.0.0.1:%d", freePort(c.t)), prog: c.bin}
	n.Dir = filepath.Join(c.dir, n.ID)
	n.args = append([]string{"--log-level", "warn", "datanode", "--id", n.ID, "--listen", n.Addr, "--data-dir", n.Dir,
		"--etcd", c.etcdURL, "--lease-ttl", "2s", "--detector=false", "--auth=false"}, extra...)
	c.Nodes = append(c.Nodes, n)
	c.start(n)
	return n
}

// settle waits until every node is ready, dials etcd at clientURL, and
// waits until every partition is served.
func (c *procCluster) settle(clientURL string, partitions int) {
	t := c.t
	t.Helper()
	for _, n := range c.Nodes {
		waitReady(t, n.URL())
	}
	var err error
	c.CP, err = controlplane.Dial(ctxT(t), controlplane.DefaultClientConfig(clientURL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CP.Close() })
	Eventually(t, 60*time.Second, "every partition served", func() bool { return c.servedCount() == partitions })
}

func (c *procCluster) start(n *procNode) { n.cmd = startProcess(c.t, n.prog, n.args...) }

// servedCount counts partitions some live node reports serving.
func (c *procCluster) servedCount() int {
	count := 0
	for _, n := range c.Nodes {
		cl, _ := client.New(client.Config{Endpoint: n.URL(), Timeout: 2 * time.Second})
		rep, err := cl.Partitions(context.Background())
		if err != nil {
			continue
		}
		for _, p := range rep.Partitions {
			if p.Serving {
				count++
			}
		}
	}
	return count
}

func (c *procCluster) node(id string) *procNode {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

// primaryOf reads the partition record of repo's partition from etcd.
func (c *procCluster) primaryOf(repo string) api.Partition {
	c.t.Helper()
	cfg, _, err := c.CP.PartitionConfig(ctxT(c.t))
	if err != nil {
		c.t.Fatal(err)
	}
	parts, err := c.CP.Partitions(ctxT(c.t))
	if err != nil {
		c.t.Fatal(err)
	}
	return parts[api.PartitionOf(repo, cfg.Count)]
}

// ids lists the data nodes' IDs in order.
func (c *procCluster) ids() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.ID)
	}
	return out
}

// other returns a node that is not id.
func (c *procCluster) other(id string) *procNode {
	for _, n := range c.Nodes {
		if n.ID != id {
			return n
		}
	}
	return nil
}

func (c *procCluster) client(n *procNode) *client.Client {
	cl, err := client.New(client.Config{Endpoint: n.URL(), Timeout: 10 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// casWorker owns one ref and moves it along a chain of values, keeping
// what it knows: every acknowledged value, and a value whose outcome is
// unknown until a read settles it. It fails the test on any answer that
// would mean a lost acknowledged update or a value nobody wrote.
type casWorker struct {
	repo, ref string
	cur       string   // the ref's value as last acknowledged or read
	pending   []string // values of unknown-outcome updates since cur
	next      int
	acked     atomic.Int64 // read by the test goroutine while the worker runs
}

func (w *casWorker) step(ctx context.Context, t *testing.T, cl *client.Client) error {
	w.next++
	val := fmt.Sprintf("%s%08x", strings.Repeat("c", 32), w.next)
	_, err := cl.RefTxn(ctx, w.repo, api.RefTxn{Updates: []api.RefUpdate{{Name: w.ref, Old: w.cur, New: val}}}, false)
	var ce *client.ConflictError
	switch {
	case err == nil:
		w.cur, w.pending = val, nil
		w.acked.Add(1)
		return nil
	case errors.As(err, &ce):
		return w.settle(t, ce.Refs[0].OID)
	case errors.Is(err, api.ErrNotPrimary), errors.Is(err, api.ErrNoPartitions), errors.Is(err, api.ErrBadRequest):
		return err // nothing applied
	}
	w.pending = append(w.pending, val) // no answer, or outcome_unknown
	if got, rerr := cl.GetRef(ctx, w.repo, w.ref); rerr == nil {
		return errors.Join(err, w.settle(t, got))
	}
	return err
}

// settle adopts a value read from the cluster, which must be the last
// acknowledged value or one of the unknown ones.
func (w *casWorker) settle(t *testing.T, got string) error {
	if got == w.cur {
		w.pending = nil
		return nil
	}
	for _, p := range w.pending {
		if got == p {
			w.cur, w.pending = got, nil
			return nil
		}
	}
	t.Errorf("%s: read %s; the last acknowledged value is %s and unknown ones are %v: an acknowledged update was lost or a value appeared from nowhere",
		w.ref, got, w.cur, w.pending)
	return nil
}

func (w *casWorker) create(ctx context.Context, t *testing.T, cl *client.Client) {
	w.cur = strings.Repeat("c", 40)
	if _, err := cl.RefTxn(ctx, w.repo, api.RefTxn{Updates: []api.RefUpdate{{Name: w.ref, Old: api.ZeroOID, New: w.cur}}}, false); err != nil {
		t.Fatalf("create %s: %v", w.ref, err)
	}
}

// TestRefsFailover kills (SIGKILL) the primary of a busy partition. A new
// primary serves within a bounded time, which the test logs, and no
// acknowledged update is lost.
func TestRefsFailover(t *testing.T) {
	c := startProcCluster(t, 3, 8)
	repo := "busy/repo"
	victim := c.primaryOf(repo).Primary
	entry := c.other(victim)
	ctx := ctxT(t)
	cl := c.client(entry)
	var workers []*casWorker
	for i := 0; i < 4; i++ {
		w := &casWorker{repo: repo, ref: fmt.Sprintf("refs/heads/w%d", i)}
		w.create(ctx, t, cl)
		workers = append(workers, w)
	}
	var killedAt time.Time
	var firstAfter []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				before, began := w.acked.Load(), time.Now()
				w.step(ctx, t, cl)
				mu.Lock()
				// Only a transaction that began after the kill measures the
				// failover: one in flight may have been acknowledged already.
				if !killedAt.IsZero() && began.After(killedAt) && w.acked.Load() > before && len(firstAfter) < len(workers) {
					firstAfter = append(firstAfter, time.Since(killedAt))
				}
				mu.Unlock()
			}
		}()
	}
	Eventually(t, 30*time.Second, "workers make progress", func() bool { return workers[0].acked.Load() >= 20 })
	mu.Lock()
	c.node(victim).cmd.Process.Signal(syscall.SIGKILL)
	killedAt = time.Now()
	mu.Unlock()
	Eventually(t, 60*time.Second, "a transaction acknowledged after the kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(firstAfter) > 0
	})
	mu.Lock()
	failover := firstAfter[0]
	mu.Unlock()
	t.Logf("failover: first transaction acknowledged %s after SIGKILL of primary %s (lease TTL 2s, plan interval 200ms)", failover, victim)
	t0 := time.Now()
	Eventually(t, 30*time.Second, "every worker progresses after the failover", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(firstAfter) >= len(workers)
	})
	t.Logf("all workers progressed %s later", time.Since(t0))
	close(stop)
	wg.Wait()
	rec := c.primaryOf(repo)
	if rec.Primary == victim {
		t.Fatalf("partition still names the killed node %s primary", victim)
	}
	for _, w := range workers {
		got, err := cl.GetRef(ctx, repo, w.ref)
		if err != nil {
			t.Fatal(err)
		}
		w.settle(t, got)
		t.Logf("%s: %d acknowledged updates, final value verified", w.ref, w.acked.Load())
	}
	// The killed node returns, is caught up and rejoins in_sync.
	back := time.Now()
	c.start(c.node(victim))
	Eventually(t, 60*time.Second, victim+" back in sync", func() bool {
		return c.primaryOf(repo).IsInSync(victim)
	})
	t.Logf("%s back in sync %s after its restart", victim, time.Since(back))
}

// rawRef sends a ref request straight to addr marked as forwarded, so the
// node answers it itself rather than forwarding it.
func rawRef(ctx context.Context, method, addr, path, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set(api.HeaderForwarded, "test")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// waitStopped waits until every thread of process pid is stopped
// (state T in /proc/pid/task/*/stat).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	Eventually(t, 10*time.Second, fmt.Sprintf("every thread of process %d stopped", pid), func() bool {
		stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		for _, f := range stats {
			b, err := os.ReadFile(f)
			i := bytes.LastIndexByte(b, ')')
			if err != nil || i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				return false
			}
		}
		return len(stats) > 0
	})
}

// TestPausedPrimaryAcknowledgesNothing stops the primary (SIGSTOP) past its
// lease. Requests sent to it while it is stopped wait in its socket. A new
// primary takes over and advances the ref; when the old one resumes it
// must neither acknowledge the queued write nor answer the queued read with
// its stale value.
func TestPausedPrimaryAcknowledgesNothing(t *testing.T) {
	c := startProcCluster(t, 3, 8)
	repo, ref := "paused/repo", "refs/heads/main"
	// A new primary can only come from in_sync: the test's premise is a
	// partition whose three members are all in sync before the write.
	Eventually(t, 60*time.Second, "all three members in sync", func() bool { return len(c.primaryOf(repo).InSync) == 3 })
	old := c.primaryOf(repo).Primary
	entry := c.other(old)
	ctx := ctxT(t)
	cl := c.client(entry)
	v1, v2, vz := strings.Repeat("1", 40), strings.Repeat("2", 40), strings.Repeat("f", 40)
	if _, err := cl.RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: api.ZeroOID, New: v1}}}, false); err != nil {
		t.Fatal(err)
	}
	victim := c.node(old)
	victim.cmd.Process.Signal(syscall.SIGSTOP)
	defer victim.cmd.Process.Signal(syscall.SIGCONT)
	// kill(2) returns before every thread has stopped: wait until they
	// have, or the requests below might be served before the pause.
	waitStopped(t, victim.cmd.Process.Pid)
	pausedAt := time.Now()

	type answer struct {
		what   string
		status int
		body   string
		err    error
		at     time.Time
	}
	queued := make(chan answer, 2)
	refPath := api.PathRepos + repo + "/" + ref
	go func() {
		s, b, err := rawRef(ctx, "POST", victim.Addr, api.PathRepos+repo+"/refs?require_objects=false",
			fmt.Sprintf(`{"updates":[{"name":%q,"old":%q,"new":%q}]}`, ref, v1, vz))
		queued <- answer{"POST v1 -> vz", s, b, err, time.Now()}
	}()
	go func() {
		s, b, err := rawRef(ctx, "GET", victim.Addr, refPath, "")
		queued <- answer{"GET", s, b, err, time.Now()}
	}()

	// Every distinct error is logged, and on failure the live nodes dump
	// their goroutines (SIGQUIT) into the test log: a failover that does
	// not happen must leave enough behind to tell why.
	// An attempt whose outcome is unknown may have been applied: a later
	// conflict showing v2 is then that attempt's success.
	var lastErr error
	unknown := false
	lastLog := time.Now()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		start := time.Now()
		res, err := cl.RefTxn(ctx, repo, api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: v1, New: v2}}}, false)
		if err == nil {
			break
		}
		var ce *client.ConflictError
		if unknown && errors.As(err, &ce) && len(ce.Refs) == 1 && ce.Refs[0].OID == v2 {
			t.Logf("%s after the pause: an earlier attempt with an unknown outcome had applied v1 -> v2", time.Since(pausedAt).Round(time.Millisecond))
			break
		}
		unknown = unknown || errors.Is(err, api.ErrOutcomeUnknown)
		if lastErr == nil || err.Error() != lastErr.Error() || time.Since(lastLog) > 10*time.Second {
			t.Logf("%s after the pause (the call took %s): %v, current values %v (primary record: %+v)", time.Since(pausedAt).Round(time.Millisecond),
				time.Since(start).Round(time.Millisecond), err, res.Refs, c.primaryOf(repo))
			lastLog = time.Now()
		}
		lastErr = err
		if time.Now().After(deadline) {
			for _, n := range c.Nodes {
				if n != victim {
					n.cmd.Process.Signal(syscall.SIGQUIT)
				}
			}
			time.Sleep(time.Second)
			t.Fatalf("no new primary acknowledged v1 -> v2 within 60s of the pause; last error: %v", err)
		}
	}
	t.Logf("new primary %s acknowledged a write %s after the pause", c.primaryOf(repo).Primary, time.Since(pausedAt))
	resumedAt := time.Now()
	victim.cmd.Process.Signal(syscall.SIGCONT)
	for i := 0; i < 2; i++ {
		a := <-queued
		if a.err != nil {
			continue // the connection failed: nothing acknowledged
		}
		if a.status == http.StatusOK || a.status == http.StatusConflict {
			t.Fatalf("the resumed old primary answered the queued %s %s after the pause, %s after the resume: %d %s; it must refuse (not_primary)",
				a.what, a.at.Sub(pausedAt), a.at.Sub(resumedAt), a.status, a.body)
		}
		t.Logf("resumed old primary answered a queued request: %d %s", a.status, strings.TrimSpace(a.body))
	}
	if got, err := cl.GetRef(ctx, repo, ref); err != nil || got != v2 {
		t.Fatalf("after the resume the ref is %s (%v); want %s", got, err, v2)
	}
	// Through the old primary (which now forwards) the new value is read.
	oldCl := c.client(victim)
	Eventually(t, 30*time.Second, "the resumed node serves the current value", func() bool {
		got, err := oldCl.GetRef(ctx, repo, ref)
		return err == nil && got == v2
	})
}

// TestRefCLI drives `stratum ref` and `stratum partitions` against
// `stratum dev`, including the refusals a user meets.
func TestRefCLI(t *testing.T) {
	bin := buildBinary(t)
	base := freePorts(t, 3)
	startDev(t, bin, "--dir", t.TempDir(), "--base-port", fmt.Sprint(base), "--nodes", "3",
		"--etcd-client-port", fmt.Sprint(freePort(t)), "--etcd-peer-port", fmt.Sprint(freePort(t)), "--plan-interval", "200ms")
	url := fmt.Sprintf("http://127.0.0.1:%d", base+2)
	waitReady(t, url)
	ep := "--endpoint=" + url
	blob := "blob 6\x00hello\n"
	out, _, code := run(t, bin, blob, ep, "put", "--sha1", "-")
	oid := strings.SplitN(out, "\n", 2)[0]
	if code != 0 {
		t.Fatalf("put: %d %q", code, out)
	}
	Eventually(t, 60*time.Second, "partitions served", func() bool {
		_, _, code := run(t, bin, "", ep, "ref", "list", "my/repo")
		return code == 0
	})
	if out, errOut, code := run(t, bin, "", ep, "ref", "update", "my/repo", "refs/heads/main", oid); code != 0 || !strings.Contains(out, "-> "+oid) {
		t.Fatalf("ref update: %d %q %q", code, out, errOut)
	}
	if out, _, code := run(t, bin, "", ep, "ref", "get", "my/repo", "refs/heads/main"); code != 0 || strings.TrimSpace(out) != oid {
		t.Fatalf("ref get: %d %q; want %s", code, out, oid)
	}
	if out, _, code := run(t, bin, "", ep, "ref", "list", "my/repo"); code != 0 || out != oid+" refs/heads/main\n" {
		t.Fatalf("ref list: %d %q", code, out)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"ref", "update", "--old", strings.Repeat("0", 40), "my/repo", "refs/heads/main", oid}, "not the expected"},
		{[]string{"ref", "update", "my/repo", "refs/heads/x", strings.Repeat("ab", 20)}, "not stored at quorum"},
		{[]string{"ref", "update", "my/repo", "refs/heads/a..b", oid}, "invalid ref name"},
		{[]string{"ref", "get", "../etc", "refs/heads/main"}, "invalid repository name"},
		{[]string{"ref", "get", "my/repo", "refs/heads/nope"}, "not found"},
	} {
		out, errOut, code := run(t, bin, "", append([]string{ep}, bad.args...)...)
		if code == 0 || !strings.Contains(errOut, bad.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("stratum %v: code %d out %q err %q; want a one-line error containing %q", bad.args, code, out, errOut, bad.want)
		}
	}
	out, _, code = run(t, bin, "", ep, "partitions", "status")
	if code != 0 || strings.Count(out, "\n") != 257 || !strings.Contains(out, "PRIMARY") {
		t.Fatalf("partitions status: %d, %d lines; want a header and 256 rows", code, strings.Count(out, "\n"))
	}
	if out, _, code := run(t, bin, "", ep, "partitions", "plan"); code != 0 || !strings.Contains(out, "nothing to do") {
		t.Fatalf("partitions plan: %d %q", code, out)
	}
	if out, _, code := run(t, bin, "", ep, "rebalance", "pause"); code != 0 || !strings.Contains(out, "paused cluster-wide") {
		t.Fatalf("rebalance pause: %d %q", code, out)
	}
	Eventually(t, 10*time.Second, "every node reports the pause", func() bool {
		out, _, code := run(t, bin, "", ep, "rebalance", "status")
		return code == 0 && strings.Count(out, "PAUSED") == 3 && strings.Contains(out, "PROGRESS")
	})
	if out, _, code := run(t, bin, "", ep, "rebalance", "resume"); code != 0 || !strings.Contains(out, "resumed") {
		t.Fatalf("rebalance resume: %d %q", code, out)
	}
	out, errOut, code := run(t, bin, "", ep, "bench", "--refs", "-n", "200", "-c", "8", "--json")
	var rep struct {
		Phases []struct {
			Phase  string
			Ops    int
			Errors int
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Phases) != 3 {
		t.Fatalf("bench --refs: %d %q %q", code, out, errOut)
	}
	for _, p := range rep.Phases {
		if p.Ops != 200 || p.Errors != 0 {
			t.Fatalf("bench --refs phase %s: %d ops, %d errors; want 200 and 0", p.Phase, p.Ops, p.Errors)
		}
	}
}
