package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/controlplane"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/internal/pki"
)

// A cluster on TLS: clients reach it over https and writes replicate over
// mutual TLS; plain HTTP gets nothing; a node-to-node route refuses a
// caller without a certificate (401), and one whose certificate is not
// the node the call claims to come from (another node's, an operator's,
// an etcd member's, all from the cluster CA: 403); and a node whose peer
// configuration carries no client certificate has its replica calls
// refused by every peer.
func TestTLSClusterRefusesNonMembers(t *testing.T) {
	ca, err := pki.NewCA("stratum test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	noClientCert := map[string]bool{"n4": true}
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cert, key, err := ca.IssueNode(cfg.ID, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS, err = pki.ServerConfig(cert, key, ca.CertPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.PeerTLS, _ = pki.ClientConfig(cert, key, ca.CertPEM)
		if noClientCert[cfg.ID] {
			cfg.PeerTLS, _ = pki.TrustConfig(ca.CertPEM)
		}
	})
	trust, _ := pki.TrustConfig(ca.CertPEM)
	httpsClient := func(i int, ringAware bool) *client.Client {
		cl, err := client.New(client.Config{Endpoint: "https://" + c.Nodes[i].Addr, TLS: trust, RingAware: ringAware, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}

	for i, ringAware := range []bool{false, true} {
		data := []byte(strings.Repeat("over tls ", 100+i))
		rec, err := httpsClient(0, ringAware).PutBytes(ctxT(t), data, api.SHA256, api.All)
		if err != nil || len(rec.Acked) != 3 {
			t.Fatalf("put at all over TLS (ring-aware %v): %+v %v; want 3 replicas", ringAware, rec, err)
		}
		got, err := httpsClient(2, ringAware).GetBytes(ctxT(t), api.MustParseOID(rec.OID), api.Quorum)
		if err != nil || string(got) != string(data) {
			t.Fatalf("get over TLS: %v", err)
		}
	}

	if resp, err := http.Get("http://" + c.Nodes[0].Addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP to a TLS node got 200")
		}
	}

	post := func(cfg *tls.Config, claim string) (int, string) {
		t.Helper()
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		req, _ := http.NewRequest(http.MethodPost, "https://"+c.Nodes[0].Addr+api.PathReplicaHas, strings.NewReader(`{"oids":[]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(api.HeaderNode, claim)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", api.PathReplicaHas, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := post(trust, "n2"); status != http.StatusUnauthorized || errorCode([]byte(body)) != "unauthenticated" {
		t.Fatalf("node-to-node route without a client certificate: %d %s; want 401 unauthenticated", status, body)
	}
	withCert := func(issue func(*pki.CA, string, []string, time.Duration) ([]byte, []byte, error), name string) *tls.Config {
		cert, key, err := issue(ca, name, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := pki.ClientConfig(cert, key, ca.CertPEM)
		return cfg
	}
	n2 := withCert((*pki.CA).IssueNode, "n2")
	if status, body := post(n2, "n2"); status == http.StatusUnauthorized || status == http.StatusForbidden {
		t.Fatalf("node-to-node route with n2's certificate claiming n2: %d %s; the certificate must pass", status, body)
	}
	for _, bad := range []struct {
		what, claim string
		cfg         *tls.Config
	}{
		{"n2's certificate claiming n3", "n3", n2},
		{"n2's certificate claiming nothing", "", n2},
		{"an operator's certificate named n3", "n3", withCert((*pki.CA).Issue, "n3")},
		{"an etcd member's certificate", "n3", withCert((*pki.CA).IssueMember, "n3")},
	} {
		if status, body := post(bad.cfg, bad.claim); status != http.StatusForbidden || errorCode([]byte(body)) != "forbidden" {
			t.Errorf("node-to-node route with %s: got %d %s; want 403 forbidden", bad.what, status, body)
		}
	}

	// n4 joins with no client certificate for its peers: it serves clients,
	// but every replica call it makes is refused.
	c.AddNode()
	c.WaitRingConverged()
	data := []byte("from the node without a client certificate")
	rec, err := httpsClient(3, false).PutBytes(ctxT(t), data, api.SHA256, api.All)
	if !errors.Is(err, api.ErrQuorumNotReached) {
		t.Fatalf("put at all coordinated by n4: %+v %v; want quorum_not_reached", rec, err)
	}
	t.Logf("n4's write at all: %v", err)
	// The same write coordinated by a node with its certificate succeeds.
	if rec, err := httpsClient(0, false).PutBytes(ctxT(t), data, api.SHA256, api.All); err != nil {
		t.Fatalf("the same put at all through n1: %+v %v", rec, err)
	}
}

// `stratum certs` makes a CA and node certificates, refusing to overwrite
// a CA or to issue without a host; `stratum dev --tls` serves HTTPS from
// its own throwaway CA; the CLI reaches it with --cacert and fails with
// one line without it.
func TestCertsAndDevTLSWithTheBinary(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	certs := dir + "/certs"
	if out, errOut, code := run(t, bin, "", "certs", "ca", "--dir", certs); code != 0 {
		t.Fatalf("certs ca: %d %q %q", code, out, errOut)
	}
	if out, errOut, code := run(t, bin, "", "certs", "node", "--dir", certs, "--host", "127.0.0.1", "--host", "n1.example", "n1"); code != 0 {
		t.Fatalf("certs node: %d %q %q", code, out, errOut)
	}
	ca, err := pki.LoadCA(certs)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := os.ReadFile(certs + "/n1.pem")
	keyPEM, _ := os.ReadFile(certs + "/n1-key.pem")
	if _, err := pki.ServerConfig(certPEM, keyPEM, ca.CertPEM); err != nil {
		t.Fatalf("the issued certificate and key do not load: %v", err)
	}
	if block, _ := pem.Decode(certPEM); block == nil {
		t.Fatal("certs node wrote no PEM certificate")
	} else if cert, err := x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatal(err)
	} else if id, ok := pki.NodeIDOf(cert); id != "n1" || !ok {
		t.Fatalf("the node identity of `certs node n1`'s certificate: got %q %v; want n1", id, ok)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"certs", "ca", "--dir", certs}, "exists"},
		{[]string{"certs", "node", "--dir", certs, "n2"}, "--host"},
		{[]string{"certs", "node", "--dir", certs, "--host", "127.0.0.1", "../n2"}, "no slashes"},
		{[]string{"certs", "node", "--dir", certs, "--host", "127.0.0.1", "n 2"}, "not a node ID"},
		{[]string{"certs", "node", "--dir", dir + "/none", "--host", "127.0.0.1", "n2"}, "no such file"},
	} {
		out, errOut, code := run(t, bin, "", bad.args...)
		if code == 0 || !strings.Contains(errOut, bad.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("stratum %v: code %d out %q err %q; want a one-line error containing %q", bad.args, code, out, errOut, bad.want)
		}
	}

	base := freePorts(t, 3)
	devDir := dir + "/dev"
	etcdPort := freePort(t)
	startDev(t, bin, "--dir", devDir, "--base-port", fmt.Sprint(base), "--nodes", "3", "--tls",
		"--etcd-client-port", fmt.Sprint(etcdPort), "--etcd-peer-port", fmt.Sprint(freePort(t)))
	caFile := devDir + "/certs/ca.pem"
	url := fmt.Sprintf("https://127.0.0.1:%d", base)
	Eventually(t, 60*time.Second, "the dev cluster's CA", func() bool { _, err := os.Stat(caFile); return err == nil })
	var urls []string
	for i := range 3 {
		urls = append(urls, fmt.Sprintf("https://127.0.0.1:%d", base+i))
	}
	waitReadyTLS(t, caFile, urls...)
	blob := "blob 4\x00tls\n"
	out, errOut, code := run(t, bin, blob, "--endpoint", url, "--cacert", caFile, "put", "--sha1", "-")
	if code != 0 {
		t.Fatalf("put over TLS: %d %q %q", code, out, errOut)
	}
	oid := strings.SplitN(out, "\n", 2)[0]
	if out, errOut, code := run(t, bin, "", "--endpoint", url, "--cacert", caFile, "get", oid); code != 0 || out != blob {
		t.Fatalf("get over TLS: %d %q %q", code, out, errOut)
	}
	_, errOut, code = run(t, bin, "", "--endpoint", url, "get", oid)
	if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("get over TLS without --cacert: code %d err %q; want a one-line certificate error", code, errOut)
	}
	if out, errOut, code := run(t, bin, "", "--endpoint", url, "--cacert", caFile, "cluster", "status"); code != 0 || !strings.Contains(out, "n3") {
		t.Fatalf("cluster status over TLS: %d %q %q", code, out, errOut)
	}
	// The embedded etcd is on TLS too and wants a certificate from the
	// dev CA: plain HTTP gets nothing, the banner's certificate works.
	etcd := fmt.Sprintf("--etcd=https://127.0.0.1:%d", etcdPort)
	if _, errOut, code := run(t, bin, "", "token", "list", fmt.Sprintf("--etcd=http://127.0.0.1:%d", etcdPort)); code == 0 {
		t.Fatalf("token list over plain HTTP to the dev etcd: succeeded (%q); want it refused", errOut)
	}
	if _, errOut, code := run(t, bin, "", "token", "list", etcd, "--tls-ca", caFile, "--tls-cert", devDir+"/certs/etcd.pem", "--tls-key", devDir+"/certs/etcd-key.pem"); code != 0 {
		t.Fatalf("token list with a certificate from the dev CA: %d %q", code, errOut)
	}
}

// TLS everywhere with real processes: three etcd members that accept only
// certificates signed by the cluster CA (clients and peers), data nodes
// that reach them, and each other, with their node certificates, and
// clients over https. A client of etcd without a certificate gets nothing.
func TestTLSEverywhereWithProcesses(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	os.MkdirAll(certs, 0o755)
	ca, err := pki.NewCA("stratum test", time.Hour)
	if err != nil || ca.Save(certs) != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(certs, "ca.pem")
	issue := func(name string) []string {
		f := (*pki.CA).IssueNode
		if strings.HasPrefix(name, "cp-") {
			f = (*pki.CA).IssueMember
		}
		cert, key, err := f(ca, name, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cf, kf := filepath.Join(certs, name+".pem"), filepath.Join(certs, name+"-key.pem")
		os.WriteFile(cf, cert, 0o644)
		os.WriteFile(kf, key, 0o600)
		return []string{"--tls-cert", cf, "--tls-key", kf, "--tls-ca", caFile}
	}
	// Three etcd members: their peer traffic is TLS with client
	// certificates too, so they form a cluster only with member
	// certificates (`stratum certs member`).
	var clientURLs, initial []string
	peerURLs := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		clientURLs = append(clientURLs, fmt.Sprintf("https://127.0.0.1:%d", freePort(t)))
		peerURLs[name] = fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
		initial = append(initial, name+"="+peerURLs[name])
	}
	for i, name := range []string{"a", "b", "c"} {
		startProcess(t, bin, append([]string{"--log-level", "warn", "controlplane", "--name", name, "--data-dir", filepath.Join(dir, name),
			"--listen-client-urls", clientURLs[i], "--listen-peer-urls", peerURLs[name], "--initial-cluster", strings.Join(initial, ","),
			"--partitions", "8", "--plan-interval", "200ms"}, issue("cp-"+name)...)...)
	}
	clientURL := strings.Join(clientURLs, ",")
	var addrs []string
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		addrs = append(addrs, addr)
		startProcess(t, bin, append([]string{"--log-level", "warn", "datanode", "--id", id, "--listen", addr,
			"--data-dir", filepath.Join(dir, id), "--etcd", clientURL, "--lease-ttl", "2s", "--auth=false"}, issue(id)...)...)
	}
	var urls []string
	for _, a := range addrs {
		urls = append(urls, "https://"+a)
	}
	waitReadyTLS(t, caFile, urls...)
	caPEM, _ := os.ReadFile(caFile)
	trust, _ := pki.TrustConfig(caPEM)
	cl, err := client.New(client.Config{Endpoint: "https://" + addrs[0], TLS: trust, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("tls everywhere")
	rec, err := cl.PutBytes(ctxT(t), data, api.SHA256, api.All)
	if err != nil {
		t.Fatalf("put at all: %+v %v", rec, err)
	}
	if got, err := cl.GetBytes(ctxT(t), api.MustParseOID(rec.OID), api.All); err != nil || string(got) != string(data) {
		t.Fatalf("get at all: %v", err)
	}

	etcdWith := func(cfg *tls.Config) error {
		ccfg := controlplane.DefaultClientConfig(clientURLs...)
		ccfg.TLS, ccfg.DialTimeout, ccfg.RequestTimeout = cfg, 3*time.Second, 3*time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cp, err := controlplane.Dial(ctx, ccfg)
		if err != nil {
			return err
		}
		defer cp.Close()
		_, err = cp.LoadRing(ctx)
		return err
	}
	if err := etcdWith(trust); err == nil {
		t.Fatal("etcd answered a client without a certificate")
	}
	cert, key, _ := ca.Issue("ops", []string{"127.0.0.1"}, time.Hour)
	withCert, _ := pki.ClientConfig(cert, key, caPEM)
	if err := etcdWith(withCert); err != nil {
		t.Fatalf("etcd with a certificate from the cluster CA: %v", err)
	}
}

// waitReadyTLS is waitReady for https nodes, trusting the CA in caFile.
func waitReadyTLS(t *testing.T, caFile string, urls ...string) {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := pki.TrustConfig(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	waitReadyWith(t, &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: trust}}, urls...)
}

// With auth on, a client route skips the API token only for a node's
// certificate: an operator's or an etcd member's certificate from the same
// CA is a client like any other and gets 401 without a token.
func TestOnlyNodeCertificatesSkipTokens(t *testing.T) {
	ca, err := pki.NewCA("stratum test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := MustStartCluster(t, 1, func(cfg *datanode.Config) {
		cert, key, err := ca.IssueNode(cfg.ID, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS, _ = pki.ServerConfig(cert, key, ca.CertPEM)
		cfg.PeerTLS, _ = pki.ClientConfig(cert, key, ca.CertPEM)
		cfg.Auth = true
	})
	get := func(issue func(*pki.CA, string, []string, time.Duration) ([]byte, []byte, error), name string) int {
		t.Helper()
		cert, key, err := issue(ca, name, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := pki.ClientConfig(cert, key, ca.CertPEM)
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := hc.Get("https://" + c.Nodes[0].Addr + api.PathCluster)
		if err != nil {
			t.Fatalf("GET %s with %s's certificate: %v", api.PathCluster, name, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get((*pki.CA).IssueNode, "n2"); got != http.StatusOK {
		t.Errorf("GET %s with node n2's certificate and no token: %d; want 200", api.PathCluster, got)
	}
	if got := get((*pki.CA).Issue, "ops"); got != http.StatusUnauthorized {
		t.Errorf("GET %s with an operator's certificate and no token: %d; want 401", api.PathCluster, got)
	}
	if got := get((*pki.CA).IssueMember, "cp1"); got != http.StatusUnauthorized {
		t.Errorf("GET %s with an etcd member's certificate and no token: %d; want 401", api.PathCluster, got)
	}
}
