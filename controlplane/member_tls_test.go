package controlplane

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/internal/pki"
)

// certFiles writes a certificate and key into dir as name.pem and
// name-key.pem and returns their paths.
func certFiles(t *testing.T, dir, name string, cert, key []byte) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// An embedded member on TLS serves its peer port (raft, snapshots, lease
// renewals) only to certificates of etcd members: a data node's
// certificate and an operator's, both from the same CA, are refused on
// the peer port, while a member's is served; the data node's is still
// served on the client port. A member whose own certificate is not a
// member's does not start.
func TestPeerPortServesMemberCertificatesOnly(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	hosts := []string{"127.0.0.1"}
	issue := func(name string, f func(*pki.CA, string, []string, time.Duration) ([]byte, []byte, error)) *tls.Config {
		t.Helper()
		cert, key, err := f(ca, name, hosts, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		certFiles(t, dir, name, cert, key)
		cfg, err := pki.ClientConfig(cert, key, ca.CertPEM)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	member := issue("m2", (*pki.CA).IssueMember)
	node := issue("n1", (*pki.CA).IssueNode)
	ops := issue("ops", (*pki.CA).Issue)
	issue("m1", (*pki.CA).IssueMember)
	mcert, mkey := filepath.Join(dir, "m1.pem"), filepath.Join(dir, "m1-key.pem")

	cfg := DefaultMemberConfig(filepath.Join(dir, "etcd"))
	cfg.BcryptCost = 4
	cfg.ClientURLs = []string{fmt.Sprintf("https://127.0.0.1:%d", freePort(t))}
	cfg.PeerURLs = []string{fmt.Sprintf("https://127.0.0.1:%d", freePort(t))}
	cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile = mcert, mkey, caFile
	m, err := StartMember(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)

	get := func(cfg *tls.Config, url string) (int, error) {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	peer := cfg.PeerURLs[0]
	for _, path := range []string{"/members", "/version"} {
		if status, err := get(member, peer+path); err != nil || status != http.StatusOK {
			t.Fatalf("GET %s on the peer port with a member's certificate: %d %v; want 200", path, status, err)
		}
		for name, cert := range map[string]*tls.Config{"a data node's": node, "an operator's": ops} {
			if status, err := get(cert, peer+path); err == nil {
				t.Errorf("GET %s on the peer port with %s certificate: got %d; want the handshake or request refused", path, name, status)
			} else {
				t.Logf("%s certificate on the peer port: %v", name, err)
			}
		}
	}
	if status, err := get(node, cfg.ClientURLs[0]+"/version"); err != nil || status != http.StatusOK {
		t.Fatalf("GET /version on the client port with a data node's certificate: %d %v; want 200", status, err)
	}

	bad := cfg
	bad.Dir = filepath.Join(dir, "etcd2")
	bad.ClientURLs = []string{fmt.Sprintf("https://127.0.0.1:%d", freePort(t))}
	bad.PeerURLs = []string{fmt.Sprintf("https://127.0.0.1:%d", freePort(t))}
	bad.TLSCertFile, bad.TLSKeyFile = filepath.Join(dir, "n1.pem"), filepath.Join(dir, "n1-key.pem")
	if m2, err := StartMember(ctxT(t), bad); err == nil || !strings.Contains(err.Error(), "stratum certs member") {
		if m2 != nil {
			m2.Close()
		}
		t.Fatalf("a member started with a data node's certificate: %v; want an error naming `stratum certs member`", err)
	}
}
