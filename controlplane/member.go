package controlplane

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/stratum-store/stratum/internal/pki"
)

// MemberConfig configures one embedded etcd member.
type MemberConfig struct {
	// Name of this member; default "stratum-etcd".
	Name string
	// Dir is the etcd data directory. Required.
	Dir string
	// ClientURLs the member listens on for clients; default http://127.0.0.1:2379.
	ClientURLs []string
	// PeerURLs the member listens on for other members; default http://127.0.0.1:2380.
	PeerURLs []string
	// AdvertiseClientURLs; default ClientURLs.
	AdvertiseClientURLs []string
	// AdvertisePeerURLs; default PeerURLs.
	AdvertisePeerURLs []string
	// InitialCluster is "name=peerURL,..." for every initial member; default
	// this member alone.
	InitialCluster string
	// ClusterState is "new" (default) or "existing".
	ClusterState string
	// ClusterToken distinguishes clusters sharing a network; default "stratum".
	ClusterToken string
	// StartTimeout bounds how long StartMember waits for the member to be
	// ready; default 60s (a member of a new 3-member cluster waits for its peers).
	StartTimeout time.Duration
	// Logger receives a line when the member starts and stops; etcd's own
	// logs are discarded unless EtcdLogLevel is set. Default: discard.
	Logger *slog.Logger
	// EtcdLogLevel, if set ("info", "warn", "error"), sends etcd's own logs to stderr.
	EtcdLogLevel string
	// TLSCertFile, TLSKeyFile and TLSCAFile, when set (all three), make the
	// member serve clients and peers over TLS with this certificate and
	// accept only callers presenting a certificate signed by the CA
	// (client-certificate auth on both). The URLs must then be https. On
	// the peer port a caller's certificate must also carry one of
	// PeerCommonNames, and so must this member's own (StartMember checks).
	TLSCertFile, TLSKeyFile, TLSCAFile string
	// PeerCommonNames are the certificate common names the member accepts
	// on its peer port, with TLS (etcd's AllowedCNs); default
	// pki.MemberCommonName, the name `stratum certs member` gives. No data
	// node's certificate carries it, so a data node cannot open the peer
	// port (raft, snapshots, lease renewals without auth checks).
	PeerCommonNames []string
	// BcryptCost is the cost of the password hashes of etcd users (etcd
	// access control, access.go); 0 keeps etcd's default, 10. Every client
	// login pays one check, so tests, whose etcd runs under the race
	// detector, set bcrypt.MinCost (4).
	BcryptCost uint
}

// DefaultMemberConfig returns a single-member configuration on the default
// loopback ports, with data in dir.
func DefaultMemberConfig(dir string) MemberConfig {
	return MemberConfig{
		Name:         "stratum-etcd",
		Dir:          dir,
		ClientURLs:   []string{"http://127.0.0.1:2379"},
		PeerURLs:     []string{"http://127.0.0.1:2380"},
		ClusterState: embed.ClusterStateFlagNew,
		ClusterToken: "stratum",
		StartTimeout: 60 * time.Second,
	}
}

// Validate checks the configuration; an error names the field and the rule.
func (c MemberConfig) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("controlplane: MemberConfig.Name must not be empty")
	case c.Dir == "":
		return errors.New("controlplane: MemberConfig.Dir must not be empty")
	case len(c.ClientURLs) == 0:
		return errors.New("controlplane: MemberConfig.ClientURLs must list at least one URL")
	case len(c.PeerURLs) == 0:
		return errors.New("controlplane: MemberConfig.PeerURLs must list at least one URL")
	case c.ClusterState != embed.ClusterStateFlagNew && c.ClusterState != embed.ClusterStateFlagExisting:
		return fmt.Errorf("controlplane: MemberConfig.ClusterState must be %q or %q, got %q",
			embed.ClusterStateFlagNew, embed.ClusterStateFlagExisting, c.ClusterState)
	case c.StartTimeout <= 0:
		return errors.New("controlplane: MemberConfig.StartTimeout must be > 0")
	case (c.TLSCertFile == "") != (c.TLSKeyFile == "") || (c.TLSCertFile == "") != (c.TLSCAFile == ""):
		return errors.New("controlplane: MemberConfig.TLSCertFile, TLSKeyFile and TLSCAFile go together")
	}
	scheme := "http://"
	if c.TLSCertFile != "" {
		scheme = "https://"
	}
	for _, u := range append(append([]string{}, c.ClientURLs...), c.PeerURLs...) {
		if _, err := url.Parse(u); err != nil || !strings.HasPrefix(u, scheme) {
			return fmt.Errorf("controlplane: MemberConfig URL %q must be scheme://host:port, scheme %s (https with the TLS files)", u, strings.TrimSuffix(scheme, "://"))
		}
	}
	return nil
}

// Member is a running embedded etcd member.
type Member struct {
	once   sync.Once
	etcd   *embed.Etcd
	cfg    MemberConfig
	logger *slog.Logger
}

// StartMember starts an etcd member and waits until it serves clients.
func StartMember(ctx context.Context, cfg MemberConfig) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ec, err := embedConfig(cfg)
	if err != nil {
		return nil, err
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("controlplane: start etcd: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("controlplane: etcd failed: %w", err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("controlplane: etcd not ready after %s", cfg.StartTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	logger.Info("etcd member ready", "name", cfg.Name, "client_urls", cfg.ClientURLs, "dir", cfg.Dir)
	return &Member{etcd: e, cfg: cfg, logger: logger}, nil
}

func embedConfig(cfg MemberConfig) (*embed.Config, error) {
	ec := embed.NewConfig()
	if cfg.BcryptCost != 0 {
		ec.BcryptCost = cfg.BcryptCost
	}
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.EnableGRPCGateway = false
	ec.InitialClusterToken = cfg.ClusterToken
	ec.ClusterState = cfg.ClusterState
	var err error
	if ec.ListenClientUrls, err = parseURLs(cfg.ClientURLs); err != nil {
		return nil, err
	}
	if ec.ListenPeerUrls, err = parseURLs(cfg.PeerURLs); err != nil {
		return nil, err
	}
	if ec.AdvertiseClientUrls, err = parseURLs(orDefault(cfg.AdvertiseClientURLs, cfg.ClientURLs)); err != nil {
		return nil, err
	}
	if ec.AdvertisePeerUrls, err = parseURLs(orDefault(cfg.AdvertisePeerURLs, cfg.PeerURLs)); err != nil {
		return nil, err
	}
	ec.InitialCluster = cfg.InitialCluster
	if ec.InitialCluster == "" {
		ec.InitialCluster = ec.InitialClusterFromName(cfg.Name)
	}
	ec.ListenMetricsUrls = nil
	if cfg.TLSCertFile != "" {
		info := transport.TLSInfo{CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile, TrustedCAFile: cfg.TLSCAFile, ClientCertAuth: true}
		ec.ClientTLSInfo, ec.PeerTLSInfo = info, info
		if ec.PeerTLSInfo.AllowedCNs, err = peerCommonNames(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.EtcdLogLevel != "" {
		ec.LogLevel = cfg.EtcdLogLevel
	} else {
		ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	}
	return ec, nil
}

// peerCommonNames is what the peer port asks of a certificate's common
// name (which etcd also asks of the member dialled), after checking that
// this member's own certificate carries one.
func peerCommonNames(cfg MemberConfig) ([]string, error) {
	names := orDefault(cfg.PeerCommonNames, []string{pki.MemberCommonName})
	pemBytes, err := os.ReadFile(cfg.TLSCertFile)
	if err != nil {
		return nil, fmt.Errorf("controlplane: MemberConfig.TLSCertFile: %w", err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("controlplane: MemberConfig.TLSCertFile %s holds no PEM certificate", cfg.TLSCertFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("controlplane: MemberConfig.TLSCertFile %s: %w", cfg.TLSCertFile, err)
	}
	if !slices.Contains(names, cert.Subject.CommonName) {
		return nil, fmt.Errorf("controlplane: MemberConfig.TLSCertFile %s has common name %q; members accept peers named %q only: issue it with `stratum certs member`",
			cfg.TLSCertFile, cert.Subject.CommonName, names)
	}
	return names, nil
}

func orDefault(v, def []string) []string {
	if len(v) > 0 {
		return v
	}
	return def
}

func parseURLs(ss []string) ([]url.URL, error) {
	out := make([]url.URL, 0, len(ss))
	for _, s := range ss {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("controlplane: bad URL %q: %w", s, err)
		}
		out = append(out, *u)
	}
	return out, nil
}

// ClientURLs returns the URLs clients should dial.
func (m *Member) ClientURLs() []string {
	return orDefault(m.cfg.AdvertiseClientURLs, m.cfg.ClientURLs)
}

// Err reports a fatal error of the running member (nil channel value while healthy).
func (m *Member) Err() <-chan error { return m.etcd.Err() }

// Close stops the member and waits for it. It is safe to call more than once.
func (m *Member) Close() {
	m.once.Do(func() {
		m.etcd.Close()
		m.logger.Info("etcd member stopped", "name", m.cfg.Name)
	})
}
