package pki

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// handshake serves one TLS connection on loopback with srv, dials it with
// cli, and returns what the server saw of the client and the dial error.
func handshake(t *testing.T, srv, cli *tls.Config) (verified bool, err error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan bool, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- false
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if tc.Handshake() != nil {
			seen <- false
			return
		}
		st := tc.ConnectionState()
		seen <- Verified(&st)
		c.Write([]byte("x"))
	}()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cli)
	if err != nil {
		<-seen
		return false, err
	}
	defer conn.Close()
	buf := make([]byte, 1)
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(buf); err != nil {
		<-seen
		return false, err
	}
	return <-seen, nil
}

func TestNodeCertificatesAuthenticateBothWays(t *testing.T) {
	ca, err := NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	nodeCert, nodeKey, err := ca.Issue("n1", []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ServerConfig(nodeCert, nodeKey, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := ClientConfig(nodeCert, nodeKey, ca.CertPEM)
	trust, _ := TrustConfig(ca.CertPEM)

	other, _ := NewCA("other", time.Hour)
	strangerCert, strangerKey, _ := other.Issue("n9", []string{"127.0.0.1"}, time.Hour)
	stranger, _ := ClientConfig(strangerCert, strangerKey, ca.CertPEM) // trusts our CA, presents a foreign cert
	wrongTrust, _ := TrustConfig(other.CertPEM)

	f := func(name string, cli *tls.Config, wantErr, wantVerified bool) {
		t.Helper()
		verified, err := handshake(t, srv, cli)
		if (err != nil) != wantErr || verified != wantVerified {
			t.Errorf("%s: verified %v, err %v; want verified %v, error %v", name, verified, err, wantVerified, wantErr)
		}
	}
	f("a peer with a node certificate", peer, false, true)
	f("a client with no certificate", trust, false, false)
	// Go's client sends a certificate only if the server's CA signed it: a
	// foreign one is not sent, and the connection is unauthenticated.
	f("a client with a certificate from another CA", stranger, false, false)
	f("a client that does not trust the CA", wrongTrust, true, false)
	forced := stranger.Clone() // one that sends its foreign certificate anyway is refused
	pair, _ := tls.X509KeyPair(strangerCert, strangerKey)
	forced.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	f("a client that forces a certificate from another CA", forced, true, false)
}

func TestCAFilesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca-key.pem: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	back, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Cert.Equal(ca.Cert) || !back.Key.Equal(ca.Key) {
		t.Fatal("the loaded CA differs from the saved one")
	}
	if _, _, err := back.Issue("n1", nil, time.Hour); err == nil {
		t.Fatal("a certificate without hosts was issued")
	}
	os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("junk"), 0o644)
	if _, err := LoadCA(dir); err == nil {
		t.Fatal("a junk CA file loaded")
	}
}

// A certificate's names are its identity: NodeID names the node of a
// node certificate after a real handshake, and nothing for an operator's
// or an etcd member's certificate from the same CA, nor for a node
// certificate the server could not verify.
func TestCertificateNamesAreIdentities(t *testing.T) {
	ca, err := NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewCA("other", time.Hour)
	srvCert, srvKey, _ := ca.IssueNode("srv", []string{"127.0.0.1"}, time.Hour)
	srv, err := ServerConfig(srvCert, srvKey, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	f := func(issuer *CA, issue func(*CA, string, []string, time.Duration) ([]byte, []byte, error), name, wantID string, wantOK bool) {
		t.Helper()
		cert, key, err := issue(issuer, name, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cli, _ := ClientConfig(cert, key, ca.CertPEM)
		id, ok := handshakeNodeID(t, srv, cli)
		if id != wantID || ok != wantOK {
			t.Fatalf("NodeID of %s: got %q %v; want %q %v", name, id, ok, wantID, wantOK)
		}
	}
	f(ca, (*CA).IssueNode, "n1", "n1", true)
	f(ca, (*CA).Issue, "n1", "", false)        // an operator's certificate with a node's name
	f(ca, (*CA).IssueMember, "n1", "", false)  // an etcd member's
	f(other, (*CA).IssueNode, "n1", "", false) // another CA's node
	if _, _, err := ca.IssueNode("bad id", []string{"127.0.0.1"}, time.Hour); err == nil {
		t.Fatal("IssueNode accepted an ID with a space")
	}
	if _, _, err := ca.Issue(MemberCommonName, []string{"127.0.0.1"}, time.Hour); err == nil {
		t.Fatal("Issue made a certificate with the members' common name")
	}
}

// handshakeNodeID serves one TLS connection with srv, dials it with cli
// and returns NodeID of what the server saw.
func handshakeNodeID(t *testing.T, srv, cli *tls.Config) (string, bool) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		id string
		ok bool
	}
	seen := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- result{}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if tc.Handshake() != nil {
			seen <- result{}
			return
		}
		st := tc.ConnectionState()
		id, ok := NodeID(&st)
		seen <- result{id, ok}
		c.Write([]byte("x"))
	}()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cli)
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Read(make([]byte, 1))
		conn.Close()
	}
	r := <-seen
	return r.id, r.ok
}
