package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/controlplane"
	"github.com/stratum-store/stratum/datanode"
)

func controlplaneCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "controlplane",
		Usage: "run one embedded etcd member of the control plane",
		Description: "One member for a laptop; three for production, e.g. on host a:\n" +
			"  stratum controlplane --name a --data-dir /var/lib/stratum/etcd \\\n" +
			"    --listen-client-urls http://10.0.0.1:2379 --listen-peer-urls http://10.0.0.1:2380 \\\n" +
			"    --initial-cluster a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380",
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "name", Value: "stratum-etcd", Usage: "member name"},
			&ucli.StringFlag{Name: "data-dir", Value: "stratum-etcd", Usage: "etcd data directory"},
			&ucli.StringSliceFlag{Name: "listen-client-urls", Value: ucli.NewStringSlice("http://127.0.0.1:2379")},
			&ucli.StringSliceFlag{Name: "listen-peer-urls", Value: ucli.NewStringSlice("http://127.0.0.1:2380")},
			&ucli.StringSliceFlag{Name: "advertise-client-urls", Usage: "default: the listen client URLs"},
			&ucli.StringSliceFlag{Name: "advertise-peer-urls", Usage: "default: the listen peer URLs"},
			&ucli.StringFlag{Name: "initial-cluster", Usage: "name=peerURL,... of every initial member (default: this member alone)"},
			&ucli.StringFlag{Name: "initial-cluster-state", Value: "new", Usage: "new or existing"},
			&ucli.StringFlag{Name: "initial-cluster-token", Value: "stratum"},
			&ucli.StringFlag{Name: "etcd-prefix", Value: "/stratum/", Usage: "key prefix of this cluster in etcd"},
			&ucli.StringFlag{Name: "tls-cert", Usage: "this member's certificate (stratum certs member); with --tls-key and --tls-ca, etcd serves clients and peers over TLS and accepts only certificates signed by the CA, on the peer port only member certificates (URLs must be https)"},
			&ucli.StringFlag{Name: "tls-key", Usage: "this member's certificate key"},
			&ucli.StringFlag{Name: "tls-ca", Usage: "the cluster CA's certificate"},
		}, append(etcdAuthFlags(), detectorFlags()...)...),
		Action: runControlplane,
	}
}

func runControlplane(c *ucli.Context) error {
	logger, err := newLogger(c, c.App.ErrWriter)
	if err != nil {
		return err
	}
	cfg := controlplane.DefaultMemberConfig(c.String("data-dir"))
	cfg.Name = c.String("name")
	cfg.ClientURLs = c.StringSlice("listen-client-urls")
	cfg.PeerURLs = c.StringSlice("listen-peer-urls")
	cfg.AdvertiseClientURLs = c.StringSlice("advertise-client-urls")
	cfg.AdvertisePeerURLs = c.StringSlice("advertise-peer-urls")
	cfg.InitialCluster = c.String("initial-cluster")
	cfg.ClusterState = c.String("initial-cluster-state")
	cfg.ClusterToken = c.String("initial-cluster-token")
	cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile = c.String("tls-cert"), c.String("tls-key"), c.String("tls-ca")
	cfg.Logger = logger
	_, etcdTLS, err := nodeTLS(c)
	if err != nil {
		return err
	}
	m, err := controlplane.StartMember(c.Context, cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	cp, err := dialControl(c, m.ClientURLs(), c.String("etcd-prefix"), etcdTLS, logger)
	if err != nil {
		return err
	}
	defer cp.Close()
	stop, err := startDetector(c, cp, "controlplane-"+cfg.Name, logger)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(c.App.Writer, "control plane member %s serving clients on %s\n", cfg.Name, strings.Join(m.ClientURLs(), ","))
	select {
	case <-c.Context.Done():
		return nil
	case err := <-m.Err():
		return fmt.Errorf("etcd member failed: %w", err)
	}
}

func datanodeFlags() []ucli.Flag {
	return append([]ucli.Flag{
		&ucli.StringFlag{Name: "id", Usage: "node ID, stable across restarts (required)"},
		&ucli.StringFlag{Name: "listen", Value: "127.0.0.1:9001", Usage: "host:port to listen on"},
		&ucli.StringFlag{Name: "advertise", Usage: "host:port peers and clients reach this node at (default: --listen)"},
		&ucli.StringFlag{Name: "data-dir", Usage: "data directory (required)"},
		&ucli.StringFlag{Name: "zone", Usage: "failure domain; replicas go to distinct zones first"},
		&ucli.StringSliceFlag{Name: "etcd", Value: ucli.NewStringSlice("http://127.0.0.1:2379"), Usage: "etcd endpoints"},
		&ucli.StringFlag{Name: "etcd-prefix", Value: "/stratum/", Usage: "key prefix of this cluster in etcd"},
		&ucli.IntFlag{Name: "replicas", Value: 3, Usage: "replication factor N, fixed when the ring is created"},
		&ucli.DurationFlag{Name: "lease-ttl", Value: 5 * time.Second, Usage: "registration lease TTL"},
		&ucli.DurationFlag{Name: "peer-timeout", Value: 5 * time.Second, Usage: "deadline of one replica call (objects up to 1 MiB)"},
		&ucli.Int64Flag{Name: "max-object-size", Value: 256 << 20, Usage: "largest object accepted, in bytes"},
		&ucli.BoolFlag{Name: "no-sync", Usage: "acknowledge writes before fsync (unsafe: a machine crash loses them)"},
		&ucli.DurationFlag{Name: "anti-entropy-interval", Value: 10 * time.Minute, Usage: "how often replicas compare digests and copy what is missing (0: off, also turns off the repair after downtime)"},
		&ucli.IntFlag{Name: "anti-entropy-rate", Value: 200, Usage: "objects per second anti-entropy may copy"},
		&ucli.DurationFlag{Name: "tombstone-grace", Value: 7 * 24 * time.Hour, Usage: "how long a deleted object's tombstone is kept (node running time); must exceed --hint-max-age and --anti-entropy-interval"},
		&ucli.DurationFlag{Name: "header-timeout", Value: 10 * time.Second, Usage: "a request's header must arrive within this long; slower clients are cut off"},
		&ucli.IntFlag{Name: "min-body-rate", Value: 256 << 10, Usage: "slowest accepted body upload, bytes per second: a body of L bytes gets --header-timeout plus L at this rate"},
		&ucli.IntFlag{Name: "max-inflight", Value: 4096, Usage: "client requests served at once; beyond it 429 busy"},
		&ucli.IntFlag{Name: "max-conns", Value: 10000, Usage: "connections open at once, clients' and peers'; beyond it 429 busy and closed"},
		&ucli.IntFlag{Name: "max-header-bytes", Value: 8 << 10, Usage: "largest request line and header; beyond it 413 too_large"},
		&ucli.Int64Flag{Name: "git-pack-cache", Value: 1 << 30, Usage: "bytes of full-clone packs kept on this node's disk to serve the next clone of the same tips (0: off)"},
		&ucli.DurationFlag{Name: "hint-max-age", Value: 3 * time.Hour, Usage: "how long a hint for a replica that missed a write is kept; anti-entropy covers what expires"},
		&ucli.BoolFlag{Name: "auth", Value: true, Usage: "require API tokens (stratum token create) on every route but /healthz and /readyz; node-to-node calls use the node certificate, or the cluster secret without TLS (--auth=false turns it off)"},
		&ucli.StringFlag{Name: "tls-cert", Usage: "this node's certificate (stratum certs node); with --tls-key and --tls-ca: serve HTTPS, mutual TLS with peers"},
		&ucli.StringFlag{Name: "tls-key", Usage: "this node's certificate key"},
		&ucli.StringFlag{Name: "tls-ca", Usage: "the cluster CA's certificate"},
		&ucli.StringFlag{Name: "clock-skew-file", Hidden: true, Usage: "fault tests: offset this node's wall clock by the duration in this file (e.g. 10m, -3m)"},
	}, append(etcdAuthFlags(), detectorFlags()...)...)
}

func datanodeCommand() *ucli.Command {
	return &ucli.Command{
		Name:   "datanode",
		Usage:  "run one data node against an etcd cluster",
		Flags:  datanodeFlags(),
		Action: runDatanode,
	}
}

func runDatanode(c *ucli.Context) error {
	if c.String("id") == "" || c.String("data-dir") == "" {
		return usagef("datanode needs --id and --data-dir (flags, STRATUM_ID / STRATUM_DATA_DIR, or the --config file)")
	}
	logger, err := newLogger(c, c.App.ErrWriter)
	if err != nil {
		return err
	}
	srvTLS, peerTLS, err := nodeTLS(c)
	if err != nil {
		return err
	}
	cp, err := dialControl(c, c.StringSlice("etcd"), c.String("etcd-prefix"), peerTLS, logger)
	if err != nil {
		return err
	}
	defer cp.Close()
	cfg := datanodeConfig(c, cp, logger)
	cfg.TLS, cfg.PeerTLS = srvTLS, peerTLS
	n, err := startNode(c.Context, cfg)
	if err != nil {
		return err
	}
	stop, err := startDetector(c, cp, "datanode-"+cfg.ID, logger)
	if err != nil {
		n.Close(context.Background())
		return err
	}
	defer stop()
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	fmt.Fprintf(c.App.Writer, "data node %s serving on %s://%s\n", cfg.ID, scheme, n.Addr())
	<-c.Context.Done()
	return n.Close(context.Background())
}

func datanodeConfig(c *ucli.Context, cp *controlplane.Client, logger *slog.Logger) datanode.Config {
	cfg := datanode.DefaultConfig()
	cfg.ID = c.String("id")
	cfg.ListenAddr = c.String("listen")
	cfg.AdvertiseAddr = c.String("advertise")
	cfg.Zone = c.String("zone")
	cfg.Store.Dir = c.String("data-dir")
	cfg.Store.MaxObjectSize = c.Int64("max-object-size")
	cfg.Store.NoSync = c.Bool("no-sync")
	cfg.Store.Logger = logger
	cfg.Ring.Replicas = c.Int("replicas")
	cfg.LeaseTTL = c.Duration("lease-ttl")
	cfg.PeerTimeout = c.Duration("peer-timeout")
	cfg.AntiEntropyInterval = c.Duration("anti-entropy-interval")
	cfg.AntiEntropyRate = c.Int("anti-entropy-rate")
	cfg.HintMaxAge = c.Duration("hint-max-age")
	cfg.GitPackCache = c.Int64("git-pack-cache")
	cfg.Auth = c.Bool("auth")
	warnAuthOff(c, logger)
	cfg.HeaderTimeout = c.Duration("header-timeout")
	cfg.MinBodyRate = int64(c.Int("min-body-rate"))
	cfg.MaxInflight = c.Int("max-inflight")
	cfg.MaxHeaderBytes = c.Int("max-header-bytes")
	cfg.MaxConns = c.Int("max-conns")
	cfg.TombstoneGrace = c.Duration("tombstone-grace")
	if path := c.String("clock-skew-file"); path != "" {
		cfg.Clock = (&skewClock{path: path}).now
	}
	cfg.Control = NewControlPlane(cp)
	cfg.Logger = logger
	return cfg
}

// etcdAuthFlags are the etcd credentials of a process, needed once etcd
// access control is on (stratum access enable).
func etcdAuthFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "etcd-user", EnvVars: []string{"STRATUM_ETCD_USER"},
			Usage: "etcd user once etcd access control is on (stratum access): root for the control plane and admin tools, stratum-node-<id> for a data node"},
		&ucli.StringFlag{Name: "etcd-password-file", EnvVars: []string{"STRATUM_ETCD_PASSWORD_FILE"}, Usage: "file holding the --etcd-user's password"},
	}
}

// etcdCredentials reads --etcd-user and --etcd-password-file.
func etcdCredentials(c *ucli.Context) (user, password string, err error) {
	user, file := c.String("etcd-user"), c.String("etcd-password-file")
	switch {
	case user == "" && file == "":
		return "", "", nil
	case user == "" || file == "":
		return "", "", usagef("--etcd-user and --etcd-password-file go together")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", usagef("--etcd-password-file: %v", err)
	}
	password = strings.TrimRight(string(b), "\r\n")
	if password == "" {
		return "", "", usagef("--etcd-password-file %s is empty", file)
	}
	return user, password, nil
}

// dialControl connects to etcd with the command's etcd credentials;
// tlsCfg (this process's certificate and the cluster CA) is used for https
// endpoints.
func dialControl(c *ucli.Context, endpoints []string, prefix string, tlsCfg *tls.Config, logger *slog.Logger) (*controlplane.Client, error) {
	ctx := c.Context
	cfg := controlplane.DefaultClientConfig(endpoints...)
	cfg.Prefix = prefix
	cfg.Logger = logger
	var err error
	if cfg.Username, cfg.Password, err = etcdCredentials(c); err != nil {
		return nil, err
	}
	for _, e := range endpoints {
		if strings.HasPrefix(e, "https://") {
			if tlsCfg == nil {
				return nil, usagef("etcd endpoint %s is https: give --tls-cert, --tls-key and --tls-ca", e)
			}
			cfg.TLS = tlsCfg
		}
	}
	return controlplane.Dial(ctx, cfg)
}

func startNode(ctx context.Context, cfg datanode.Config) (*datanode.Node, error) {
	n, err := datanode.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// localURL is "http://127.0.0.1:<port>".
func localURL(port int) string {
	u := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}
	return u.String()
}

func joinDir(dir string, parts ...string) string {
	return filepath.Join(append([]string{dir}, parts...)...)
}
