package tests

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/datanode"
)

// mustToken stores a new token with scopes and returns it.
func mustToken(t *testing.T, c *Cluster, name string, scopes ...string) (api.Token, string) {
	t.Helper()
	rec, tok, err := api.NewToken(name, scopes)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CP.CreateToken(ctxT(t), rec); err != nil {
		t.Fatal(err)
	}
	return rec, tok
}

// call sends one request with an optional token and returns the status
// and the error code of the body.
func call(t *testing.T, url, method, token string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json") // what JSON routes take; others ignore it
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, errorCode(b)
}

// With auth on, every route but /healthz and /readyz refuses a request
// without a valid token (401) and one whose token lacks the route's scope
// (403), and serves one with it; node-to-node routes refuse clients, while
// the nodes themselves replicate and forward with the cluster secret; a
// revoked token stops working on every node.
func TestAuthScopesAndRevocation(t *testing.T) {
	// The harness waits for the partitions through the nodes' API, so its
	// admin token is made before any node starts.
	c := refsClusterWith(t, 3, 8, func(cfg *datanode.Config) { cfg.Auth = true }, func(c *Cluster) {
		_, c.Token = mustToken(t, c, "harness", api.ScopeAdmin)
	})
	_, readTok := mustToken(t, c, "reader", api.ScopeRead)
	writeRec, writeTok := mustToken(t, c, "writer", api.ScopeWrite)
	_, adminTok := mustToken(t, c, "ops", api.ScopeAdmin)
	_, bothTok := mustToken(t, c, "ci", api.ScopeRead, api.ScopeWrite)

	data := []byte("authorized bytes")
	oid, _ := api.Digest(api.SHA256, data)
	base := c.URL(0)
	routes := []struct {
		method, path string
		body         []byte
		scope        string
	}{
		{"PUT", api.PathObjects + oid.String(), data, api.ScopeWrite},
		{"GET", api.PathObjects + oid.String(), nil, api.ScopeRead},
		{"HEAD", api.PathObjects + oid.String(), nil, api.ScopeRead},
		{"POST", api.PathBatchHas, []byte(`{"oids":["` + oid.String() + `"]}`), api.ScopeRead},
		{"POST", api.PathBatchGet, []byte(`{"oids":["` + oid.String() + `"]}`), api.ScopeRead},
		{"POST", api.PathBatchPut, nil, api.ScopeWrite},
		{"GET", api.PathStatus, nil, api.ScopeRead},
		{"GET", api.PathCluster, nil, api.ScopeRead},
		{"GET", api.PathPartitions, nil, api.ScopeRead},
		{"GET", "/metrics", nil, api.ScopeRead},
		{"GET", "/ui/", nil, api.ScopeRead},
		{"GET", api.PathRepos + "auth/repo/refs", nil, api.ScopeRead},
		{"POST", api.PathRepos + "auth/repo/refs?require_objects=false", []byte(`{"updates":[{"name":"refs/heads/main","old":"` + api.ZeroOID + `","new":"` + strings.Repeat("1", 40) + `"}]}`), api.ScopeWrite},
		{"GET", api.PathAdminNodes, nil, api.ScopeAdmin},
		{"GET", api.PathAdminRebalance, nil, api.ScopeAdmin},
		{"POST", api.PathAdminRebalance + "/resume", nil, api.ScopeAdmin},
		{"DELETE", api.PathObjects + oid.String(), nil, api.ScopeWrite},
	}
	wrong := map[string]string{api.ScopeRead: writeTok, api.ScopeWrite: readTok, api.ScopeAdmin: bothTok}
	right := map[string]string{api.ScopeRead: readTok, api.ScopeWrite: writeTok, api.ScopeAdmin: adminTok}
	for _, r := range routes {
		what := r.method + " " + r.path
		for _, bad := range []string{"", "stratum_000000000000_" + strings.Repeat("0", 64), "not-a-token"} {
			if status, code := call(t, base+r.path, r.method, bad, r.body); status != 401 || (r.method != "HEAD" && code != "unauthenticated") {
				t.Errorf("%s with token %q: %d %s; want 401 unauthenticated", what, bad, status, code)
			}
		}
		if status, code := call(t, base+r.path, r.method, wrong[r.scope], r.body); status != 403 || (r.method != "HEAD" && code != "forbidden") {
			t.Errorf("%s without the %s scope: %d %s; want 403 forbidden", what, r.scope, status, code)
		}
		if status, code := call(t, base+r.path, r.method, right[r.scope], r.body); status == 401 || status == 403 {
			t.Errorf("%s with the %s scope: %d %s; want it served", what, r.scope, status, code)
		}
	}
	// The status page asks a browser for basic auth; a token as the
	// password opens it (curl -u :TOKEN works the same way).
	resp, err := http.Get(base + "/ui/")
	if err != nil || resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("/ui/ without a token: %v %v; want 401 with a basic-auth challenge", resp, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", base+"/ui/", nil)
	req.SetBasicAuth("anyone", readTok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/ui/ with the read token as the basic-auth password: %v %v; want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	req.SetBasicAuth("anyone", writeTok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("/ui/ with a write-only token: %v %v; want 403", resp, err)
	} else {
		resp.Body.Close()
	}
	for _, open := range []string{"/healthz", "/readyz"} {
		if status, _ := call(t, base+open, "GET", "", nil); status != 200 {
			t.Errorf("%s without a token: %d; want 200 (it stays open)", open, status)
		}
	}
	if status, code := call(t, base+api.PathReplicaHas, "POST", adminTok, []byte(`{"oids":[]}`)); status != 401 || code != "unauthenticated" {
		t.Errorf("a node-to-node route with a client's admin token: %d %s; want 401", status, code)
	}

	// The nodes replicate and forward ref transactions among themselves.
	cl := func(i int, tok string) *client.Client {
		cl, err := client.New(client.Config{Endpoint: c.URL(i), Token: tok, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	rec, err := cl(1, bothTok).PutBytes(ctxT(t), []byte("replicated with auth"), api.SHA256, api.All)
	if err != nil || len(rec.Acked) != 3 {
		t.Fatalf("put at all with auth on: %+v %v", rec, err)
	}
	for i := range 3 {
		if _, err := cl(i, bothTok).RefTxn(ctxT(t), fmt.Sprintf("auth/fwd%d", i), api.RefTxn{Updates: []api.RefUpdate{
			{Name: "refs/heads/main", Old: api.ZeroOID, New: rec.OID}}}, true); err != nil {
			t.Fatalf("ref transaction through n%d (forwarded to its primary): %v", i+1, err)
		}
	}

	// Revocation reaches every node.
	if found, err := c.CP.RevokeToken(ctxT(t), writeRec.ID); err != nil || !found {
		t.Fatalf("revoke: %v %v", found, err)
	}
	for i := range 3 {
		Eventually(t, 10*time.Second, fmt.Sprintf("n%d refuses the revoked token", i+1), func() bool {
			status, _ := call(t, c.URL(i)+api.PathObjects+oid.String(), "PUT", writeTok, data)
			return status == 401
		})
	}
}

// `stratum token create|list|revoke` against `stratum dev --auth`: the CLI
// is refused without a token (one line, non-zero), works with one, and a
// revoked token stops working.
func TestTokenCLIWithTheBinary(t *testing.T) {
	bin := buildBinary(t)
	base := freePorts(t, 3)
	etcdPort := freePort(t)
	startDev(t, bin, "--dir", t.TempDir(), "--base-port", fmt.Sprint(base), "--nodes", "3", "--auth",
		"--etcd-client-port", fmt.Sprint(etcdPort), "--etcd-peer-port", fmt.Sprint(freePort(t)))
	url := fmt.Sprintf("http://127.0.0.1:%d", base)
	waitReady(t, url)
	etcd := fmt.Sprintf("--etcd=http://127.0.0.1:%d", etcdPort)
	tok, errOut, code := run(t, bin, "", "token", "create", etcd, "--scope", "read", "--scope", "write", "ci")
	tok = strings.TrimSpace(tok)
	if code != 0 || !strings.HasPrefix(tok, "stratum_") {
		t.Fatalf("token create: %d %q %q", code, tok, errOut)
	}
	id, _, _ := api.ParseToken(tok)
	if out, _, code := run(t, bin, "", "token", "list", etcd); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "read,write") || strings.Contains(out, tok) {
		t.Fatalf("token list: %d %q; want the id and scopes, never the token", code, out)
	}
	blob := "blob 5\x00auth\n"
	_, errOut, code = run(t, bin, blob, "--endpoint", url, "put", "--sha1", "-")
	if code == 0 || !strings.Contains(errOut, "unauthenticated") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("put without a token: %d %q; want a one-line unauthenticated error", code, errOut)
	}
	out, errOut, code := run(t, bin, blob, "--endpoint", url, "--token", tok, "put", "--sha1", "-")
	if code != 0 {
		t.Fatalf("put with a token: %d %q %q", code, out, errOut)
	}
	oid := strings.SplitN(out, "\n", 2)[0]
	// The ops scripts send STRATUM_TOKEN.
	if _, errOut, code := script(t, url, "cluster-status.sh"); code == 0 || !strings.Contains(errOut, "401") {
		t.Fatalf("cluster-status.sh without a token: %d %q; want a 401 failure", code, errOut)
	}
	cmd := exec.Command("bash", "../scripts/cluster-status.sh")
	cmd.Env = append(os.Environ(), "STRATUM_ENDPOINT="+url, "STRATUM_TOKEN="+tok)
	if out, errOut, code := runCmd(t, cmd); code != 0 || !strings.Contains(out, "ring revision") {
		t.Fatalf("cluster-status.sh with STRATUM_TOKEN: %d %q %q", code, out, errOut)
	}
	_, errOut, code = run(t, bin, "", "--endpoint", url, "--token", tok, "node", "list")
	if code == 0 || !strings.Contains(errOut, "forbidden") {
		t.Fatalf("node list with a read,write token: %d %q; want forbidden (admin)", code, errOut)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "create", etcd, "--scope", "root", "x"}, "scope"},
		{[]string{"token", "create", etcd, "x"}, "at least one scope"},
		{[]string{"token", "create", etcd, "--scope", "read"}, "name"},
		{[]string{"token", "revoke", etcd, "000000000000"}, "no token"},
	} {
		out, errOut, code := run(t, bin, "", bad.args...)
		if code == 0 || !strings.Contains(errOut, bad.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("stratum %v: code %d out %q err %q; want a one-line error containing %q", bad.args, code, out, errOut, bad.want)
		}
	}
	if out, errOut, code := run(t, bin, "", "token", "revoke", etcd, id); code != 0 {
		t.Fatalf("token revoke: %d %q %q", code, out, errOut)
	}
	Eventually(t, 10*time.Second, "the revoked token refused", func() bool {
		_, errOut, code := run(t, bin, "", "--endpoint", url, "--token", tok, "get", oid)
		return code != 0 && strings.Contains(errOut, "unauthenticated")
	})
}

// Auth can be turned on one node at a time: a node with auth off still
// presents the cluster secret on its node-to-node calls, so a peer that
// already has auth on accepts its replica writes, and the reverse works
// as before.
func TestAuthTurnedOnOneNodeAtATime(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	_, c.Token = mustToken(t, c, "ops", api.ScopeRead, api.ScopeWrite)
	c.Tune = func(cfg *datanode.Config) { cfg.Auth = cfg.ID == "n1" }
	c.StopNode(0)
	c.StartNode(0)
	c.WaitRingConverged()
	if status, code := call(t, c.URL(0)+api.PathCluster, "GET", "", nil); status != 401 {
		t.Fatalf("n1 restarted with auth on answers a request without a token: %d %s", status, code)
	}
	for i, via := range []int{1, 0} { // coordinated by an auth-off node, then by the auth-on one
		data := []byte(fmt.Sprintf("rolling auth %d", i))
		if _, err := c.Client(via).PutBytes(ctxT(t), data, api.SHA256, api.All); err != nil {
			t.Fatalf("put at all via %s with n1 alone on auth: %v", c.Nodes[via].ID, err)
		}
		oid, _ := api.Digest(api.SHA256, data)
		for j := range c.Nodes {
			if got := local(t, c, j, oid); got != "copy" {
				t.Errorf("%s holds %s of the object written via %s; want a copy", c.Nodes[j].ID, got, c.Nodes[via].ID)
			}
		}
	}
}
