package tests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/datanode/git/backend"
)

// gitObject returns a blob in Git's canonical form with its SHA-1.
func gitObject(t testing.TB, body []byte) backend.Object {
	t.Helper()
	data := append(fmt.Appendf(nil, "blob %d\x00", len(body)), body...)
	oid, err := api.Digest(api.SHA1, data)
	if err != nil {
		t.Fatal(err)
	}
	return backend.Object{OID: oid, Data: data}
}

// backend.Client against a real cluster: what Put stores, Get and Has see
// through every node; a large object goes alone; Update is one
// compare-and-swap transaction whose stale old value is ErrConflict and
// whose missing object is api.ErrMissingObject; Refs pages.
func TestGitBackendClient(t *testing.T) {
	c := refsCluster(t, 3, 4, func(cfg *datanode.Config) { cfg.Store.LargeThreshold = 64 << 10 })
	cl := func(i int) *backend.Client {
		b, err := backend.NewClient(backend.ClientConfig{Endpoint: c.URL(i), MaxBatchObject: 64 << 10, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var objs []backend.Object
	for i := 0; i < 300; i++ {
		objs = append(objs, gitObject(t, fmt.Appendf(nil, "object %d\n", i)))
	}
	big := gitObject(t, bytes.Repeat([]byte("large object above the batch limit\n"), 4000)) // 140 KB
	objs = append(objs, big)
	if err := cl(0).Put(ctxT(t), objs); err != nil {
		t.Fatalf("Put of %d objects through n1: %v", len(objs), err)
	}
	absent := gitObject(t, []byte("never stored\n"))
	oids := []api.OID{absent.OID}
	want := map[api.OID][]byte{}
	for _, o := range objs {
		oids, want[o.OID] = append(oids, o.OID), o.Data
	}
	got := map[api.OID][]byte{}
	err := cl(1).Get(ctxT(t), oids, func(oid api.OID, data []byte, err error) {
		switch {
		case oid == absent.OID && !errors.Is(err, backend.ErrNotFound):
			t.Errorf("Get of an absent object: %v; want ErrNotFound", err)
		case oid != absent.OID && err != nil:
			t.Errorf("Get %s through n2: %v", oid, err)
		}
		got[oid] = bytes.Clone(data)
	})
	if err != nil || len(got) != len(oids) || !bytes.Equal(got[big.OID], big.Data) || !bytes.Equal(got[objs[7].OID], objs[7].Data) {
		t.Fatalf("Get through n2: %d of %d objects, err %v; want each object once, with its bytes", len(got), len(oids), err)
	}
	has, err := cl(2).Has(ctxT(t), oids)
	if err != nil || has[0] || !has[1] || !has[len(has)-1] || len(has) != len(oids) {
		t.Fatalf("Has through n3: %v (first %t, second %t), %v; want absent, then present", len(has), has[0], has[1], err)
	}

	commit := objs[0].OID.String()
	up := func(i int, name, old, new string) error {
		return cl(i).Update(ctxT(t), "demo/backend.git", []backend.Update{{Name: name, Old: old, New: new}})
	}
	if err := up(0, "refs/heads/main", api.ZeroOID, commit); err != nil {
		t.Fatalf("creating refs/heads/main: %v", err)
	}
	if err := up(1, "refs/heads/main", api.ZeroOID, objs[1].OID.String()); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("a stale create: %v; want ErrConflict", err)
	}
	if err := up(2, "refs/heads/other", api.ZeroOID, absent.OID.String()); !errors.Is(err, api.ErrMissingObject) {
		t.Fatalf("a ref to a missing object: %v; want api.ErrMissingObject", err)
	}
	if err := up(2, "refs/heads/main", commit, objs[1].OID.String()); err != nil {
		t.Fatalf("moving main with the right old value: %v", err)
	}
	for i := 0; i < 5; i++ {
		if err := up(0, fmt.Sprintf("refs/tags/t%d", i), api.ZeroOID, commit); err != nil {
			t.Fatal(err)
		}
	}
	refs, err := cl(1).Refs(ctxT(t), "demo/backend.git")
	if err != nil || len(refs) != 6 || refs[0].Name != "refs/heads/main" || refs[0].OID != objs[1].OID.String() {
		t.Fatalf("Refs: %v, %v; want main at %s and five tags", refs, err, objs[1].OID)
	}
	if refs, err := cl(1).Refs(ctxT(t), "demo/never-pushed.git"); err != nil || len(refs) != 0 {
		t.Fatalf("Refs of a repository never pushed to: %v, %v; want none and no error", refs, err)
	}
}

// gitCall sends one request to a Git route and returns the status, the
// challenge header and the body.
func gitCall(t *testing.T, method, url, contentType, user, pass string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("0000"))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
}

// The Git routes' answers before any Git data: the access rules (basic
// auth with a token as the password; read scope fetches, write scope
// pushes; 401 with a challenge so git asks its credential helper) and
// clear 4xx for what is no Git request, in text git prints.
func TestGitRoutesAccess(t *testing.T) {
	c := refsClusterWith(t, 3, 4, func(cfg *datanode.Config) { cfg.Auth = true }, func(c *Cluster) {
		_, c.Token = mustToken(t, c, "harness", api.ScopeAdmin)
	})
	_, readTok := mustToken(t, c, "reader", api.ScopeRead)
	_, pushTok := mustToken(t, c, "pusher", api.ScopeRead, api.ScopeWrite)
	// Nodes learn tokens from an etcd watch: wait until node 0 knows the
	// last one created, or a check below may meet "unknown token".
	Eventually(t, 10*time.Second, "n1 knows the new tokens", func() bool {
		status, _, _ := gitCall(t, "GET", c.URL(0)+"/git/demo/access.git/info/refs?service=git-upload-pack", "", "git", pushTok)
		return status != http.StatusUnauthorized
	})
	base := c.URL(0) + "/git/demo/access.git"
	const (
		upReq   = "application/x-git-upload-pack-request"
		recvReq = "application/x-git-receive-pack-request"
	)
	f := func(method, path, ct, tok string, wantStatus int, wantBody string) {
		t.Helper()
		status, challenge, body := gitCall(t, method, base+path, ct, "git", tok)
		if status != wantStatus || !strings.Contains(body, wantBody) {
			t.Errorf("%s %s (token %.16s): %d %q; want %d and a body with %q", method, path, tok, status, body, wantStatus, wantBody)
		}
		if (status == 401) != (challenge == `Basic realm="stratum"`) {
			t.Errorf("%s %s: %d with WWW-Authenticate %q; want the basic challenge on 401 only", method, path, status, challenge)
		}
	}
	f("GET", "/info/refs?service=git-upload-pack", "", "", 401, "unauthenticated")
	f("GET", "/info/refs?service=git-receive-pack", "", "", 401, "")
	f("POST", "/git-receive-pack", recvReq, "", 401, "")
	f("GET", "/info/refs?service=git-upload-pack", "", "stratum_000000000000_"+strings.Repeat("0", 64), 401, "unknown or revoked")
	f("GET", "/info/refs?service=git-receive-pack", "", readTok, 403, "lacks the write scope")
	f("POST", "/git-receive-pack", recvReq, readTok, 403, "lacks the write scope")
	f("GET", "/info/refs?service=git-receive-pack", "", pushTok, 200, "# service=git-receive-pack")
	f("GET", "/info/refs", "", readTok, 400, "smart protocol")
	f("GET", "/info/refs?service=git-nothing", "", readTok, 400, "unknown service")
	f("GET", "/HEAD", "", readTok, 404, "only the smart protocol")
	f("POST", "/git-receive-pack", "text/plain", pushTok, 415, "application/x-git-receive-pack-request")
	f("POST", "/git-upload-pack", recvReq, readTok, 415, upReq)
	f("GET", "/git-receive-pack", recvReq, pushTok, 405, "takes POST")
	status, _, body := gitCall(t, "GET", c.URL(0)+"/git/demo/../x/info/refs?service=git-upload-pack", "", "git", readTok)
	if status != 400 || !strings.Contains(body, "invalid repository") {
		t.Errorf("a repository name with '..': %d %q; want 400 naming the rule", status, body)
	}
	// basic auth stays refused on other routes
	if status, _, _ := gitCall(t, "GET", c.URL(0)+api.PathStatus, "", "git", readTok); status != 401 {
		t.Errorf("basic auth on %s: %d; want 401", api.PathStatus, status)
	}
	// Git's routes are labelled by route, never by repository.
	req, _ := http.NewRequest("GET", c.URL(0)+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+readTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	if want := `stratum_requests_total{method="GET",route="/git/{repo}/info/refs",status="200"}`; !bytes.Contains(metrics, []byte(want)) || bytes.Contains(metrics, []byte("access.git")) {
		t.Errorf("/metrics has no %s, or names the repository", want)
	}
}
