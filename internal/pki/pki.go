// Package pki makes the certificates a stratum cluster runs on and the TLS
// configurations built from them: one certificate authority per cluster,
// and per node a certificate that serves both as its server certificate
// (clients and peers verify it against the CA) and as its client
// certificate (peers accept node-to-node calls only from it).
//
// A certificate's names are its identity (docs/security.md):
//
//	node n1         IssueNode: URI SAN stratum-node:n1 (and CN n1); peers
//	                accept node-to-node calls claiming to come from n1 only
//	                with it (NodeID)
//	etcd member     IssueMember: CN MemberCommonName; etcd members accept
//	                each other on the peer port only with it
//	anything else   Issue: an operator's tool, an etcd client; neither a
//	                node nor a member
//
// Files are PEM: <dir>/ca.pem and ca-key.pem, <dir>/<name>.pem and
// <name>-key.pem. Keys are ECDSA P-256 and written 0600.
//
//	ca, _ := pki.NewCA("stratum test", 24*time.Hour)
//	cert, key, _ := ca.IssueNode("n1", []string{"127.0.0.1", "localhost"}, 24*time.Hour)
//	srv, _ := pki.ServerConfig(certPEM, keyPEM, caPEM) // verifies client certs when given
//	peer, _ := pki.ClientConfig(certPEM, keyPEM, caPEM)
//	id, ok := pki.NodeID(ctx.TLSConnectionState())     // "n1", true for n1's certificate
//
// # Caveats
//
// A node's certificate must name every address peers and clients use to
// reach it (IP addresses and DNS names): verification is by the address
// dialled. Anyone holding a node certificate and key is that node to every
// other node, so keep the key files readable by the service only. The
// identity is only as good as the CA's key: whoever holds ca-key.pem can
// issue any identity.
package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/stratum-store/stratum/internal/atomicfile"
)

// CA is a certificate authority: its certificate and key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// CertPEM is Cert encoded.
	CertPEM []byte
}

// NewCA makes a self-signed CA valid for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"stratum"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: encode("CERTIFICATE", der)}, nil
}

// NodeURIScheme is the scheme of the URI SAN that names a node:
// stratum-node:<id>.
const NodeURIScheme = "stratum-node"

// MemberCommonName is the common name of every etcd member's certificate:
// members accept peers presenting it only (etcd's AllowedCNs). It is no
// node ID (those have no spaces), so no node certificate carries it.
const MemberCommonName = "stratum etcd member"

// NodeIDPattern is what a node ID looks like (the same rule as the control
// plane's).
var NodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Issue makes a certificate for name, valid for server and client
// authentication, naming hosts (IP addresses or DNS names), and returns it
// and its key as PEM. It proves no node or member identity: it is for an
// operator's tools and etcd clients. Nodes get IssueNode, etcd members
// IssueMember.
func (ca *CA) Issue(name string, hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if name == MemberCommonName {
		return nil, nil, errors.New("pki: an etcd member's certificate comes from IssueMember")
	}
	return ca.issue(name, hosts, nil, validity)
}

// IssueNode makes node id's certificate: Issue's, with the URI SAN
// stratum-node:<id> that peers check against the node a call claims to
// come from (NodeID).
func (ca *CA) IssueNode(id string, hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if !NodeIDPattern.MatchString(id) {
		return nil, nil, fmt.Errorf("pki: node ID %q: want 1-64 letters, digits, '.', '_' or '-'", id)
	}
	return ca.issue(id, hosts, &url.URL{Scheme: NodeURIScheme, Opaque: id}, validity)
}

// IssueMember makes the certificate of etcd member name: common name
// MemberCommonName (what members ask of each other on the peer port), the
// member's name in a URI SAN stratum-etcd-member:<name> for people.
func (ca *CA) IssueMember(name string, hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if name == "" {
		return nil, nil, errors.New("pki: a member certificate needs the member's name")
	}
	return ca.issue(MemberCommonName, hosts, &url.URL{Scheme: "stratum-etcd-member", Opaque: url.PathEscape(name)}, validity)
}

func (ca *CA) issue(name string, hosts []string, uri *url.URL, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if name == "" || len(hosts) == 0 {
		return nil, nil, errors.New("pki: a certificate needs a name and at least one host")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"stratum"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if uri != nil {
		tmpl.URIs = []*url.URL{uri}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encode("CERTIFICATE", der), encode("EC PRIVATE KEY", kder), nil
}

// Save writes the CA to dir/ca.pem and dir/ca-key.pem.
func (ca *CA) Save(dir string) error {
	kder, err := x509.MarshalECPrivateKey(ca.Key)
	if err != nil {
		return err
	}
	if err := WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, "ca-key.pem"), encode("EC PRIVATE KEY", kder), 0o600)
}

// LoadCA reads dir/ca.pem and dir/ca-key.pem.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: %s: the CA key is not ECDSA", dir)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s/ca.pem is not a CA certificate", dir)
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

// WriteFile writes data to path atomically (atomicfile), so a crash never
// leaves half a key behind.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return atomicfile.Write(path, perm, bytes.NewReader(data))
}

// ServerConfig is a node's listener configuration: it presents cert and
// asks for a client certificate, verifying any that is given against the
// CA. Clients without one are served (they authenticate otherwise);
// node-to-node routes check that a verified certificate came (Verified).
func ServerConfig(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	pair, pool, err := load(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool,
		ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}, nil
}

// ClientConfig is a node's configuration for calling its peers: it trusts
// only the CA and presents cert as its client certificate.
func ClientConfig(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	pair, pool, err := load(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// TrustConfig is a client's configuration that trusts only the CA (no
// client certificate).
func TrustConfig(caPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("pki: no certificate in the CA file")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Verified reports whether state carries a client certificate that
// verified against the server's CA.
func Verified(state *tls.ConnectionState) bool {
	return state != nil && len(state.VerifiedChains) > 0
}

// NodeID is the node a verified client certificate names (its
// stratum-node:<id> URI SAN); ok is false without a verified certificate
// or when it names no node, or more than one.
func NodeID(state *tls.ConnectionState) (id string, ok bool) {
	if !Verified(state) || len(state.VerifiedChains[0]) == 0 {
		return "", false
	}
	return NodeIDOf(state.VerifiedChains[0][0])
}

// NodeIDOf is the node cert names in its URI SAN stratum-node:<id>; ok is
// false when it names none, more than one, or an ID of the wrong shape.
func NodeIDOf(cert *x509.Certificate) (id string, ok bool) {
	for _, u := range cert.URIs {
		if u.Scheme != NodeURIScheme {
			continue
		}
		if ok || !NodeIDPattern.MatchString(u.Opaque) {
			return "", false
		}
		id, ok = u.Opaque, true
	}
	return id, ok
}

func load(certPEM, keyPEM, caPEM []byte) (tls.Certificate, *x509.CertPool, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("pki: certificate and key: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, errors.New("pki: no certificate in the CA file")
	}
	return pair, pool, nil
}

func encode(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
