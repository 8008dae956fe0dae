package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/controlplane"
	"github.com/stratum-store/stratum/datanode"
	"github.com/stratum-store/stratum/internal/pki"
)

func devCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "dev",
		Usage: "run a local cluster in one process: an embedded etcd and --nodes data nodes on 127.0.0.1",
		Flags: append([]ucli.Flag{
			&ucli.IntFlag{Name: "nodes", Value: 3, Usage: "number of data nodes"},
			&ucli.StringFlag{Name: "dir", Value: "stratum-dev", Usage: "data directory (etcd and every node under it)"},
			&ucli.IntFlag{Name: "base-port", Value: 9001, Usage: "port of the first data node; the others follow"},
			&ucli.IntFlag{Name: "etcd-client-port", Value: 12379, Usage: "embedded etcd client port"},
			&ucli.IntFlag{Name: "etcd-peer-port", Value: 12380, Usage: "embedded etcd peer port"},
			&ucli.IntFlag{Name: "replicas", Value: 3, Usage: "replication factor N, fixed when the ring is created"},
			&ucli.BoolFlag{Name: "no-sync", Usage: "acknowledge writes before fsync (unsafe)"},
			&ucli.BoolFlag{Name: "pprof", Usage: "serve Go profiles under /debug/pprof/ on every node"},
			&ucli.BoolFlag{Name: "auth", Usage: "require API tokens, as production nodes with --auth do (create them with stratum token create --etcd <this etcd>)"},
			&ucli.BoolFlag{Name: "tls", Usage: "serve HTTPS with mutual TLS between the nodes and to the embedded etcd (client certificates required), from a throwaway CA made in DIR/certs"},
		}, detectorFlags()...),
		Action: runDev,
	}
}

func runDev(c *ucli.Context) error {
	if c.Int("nodes") < 1 || c.Int("nodes") > 64 {
		return usagef("--nodes must be between 1 and 64, got %d", c.Int("nodes"))
	}
	logger, err := newLogger(c, c.App.ErrWriter)
	if err != nil {
		return err
	}
	dir := c.String("dir")
	mcfg := controlplane.DefaultMemberConfig(joinDir(dir, "etcd"))
	mcfg.ClientURLs = []string{localURL(c.Int("etcd-client-port"))}
	mcfg.PeerURLs = []string{localURL(c.Int("etcd-peer-port"))}
	mcfg.Logger = logger
	var etcdTLS *tls.Config
	if c.Bool("tls") {
		if etcdTLS, err = devEtcdTLS(&mcfg, joinDir(dir, "certs")); err != nil {
			return err
		}
	}
	m, err := controlplane.StartMember(c.Context, mcfg)
	if err != nil {
		return err
	}
	defer m.Close()
	cp, err := dialControl(c, m.ClientURLs(), "/stratum/", etcdTLS, logger)
	if err != nil {
		return err
	}
	defer cp.Close()
	stop, err := startDetector(c, cp, "dev", logger)
	if err != nil {
		return err
	}
	defer stop()
	nodes, err := startDevNodes(c, cp, dir)
	defer closeAll(c.App.ErrWriter, nodes)
	if err != nil {
		return err
	}
	printDevBanner(c, m, nodes)
	if err := waitDevReady(c.Context, nodes); err != nil {
		fmt.Fprintln(c.App.Writer, "stopping")
		return nil
	}
	fmt.Fprintln(c.App.Writer, "ready; Ctrl-C stops the cluster")
	select {
	case <-c.Context.Done():
		fmt.Fprintln(c.App.Writer, "stopping")
		return nil
	case err := <-m.Err():
		return fmt.Errorf("etcd member failed: %w", err)
	}
}

func startDevNodes(c *ucli.Context, cp *controlplane.Client, dir string) ([]*datanode.Node, error) {
	var nodes []*datanode.Node
	var ca *pki.CA
	if c.Bool("tls") {
		var err error
		if ca, err = devCA(joinDir(dir, "certs")); err != nil {
			return nil, err
		}
	}
	for i := 0; i < c.Int("nodes"); i++ {
		logger, _ := newLogger(c, c.App.ErrWriter)
		cfg := datanode.DefaultConfig()
		cfg.ID = fmt.Sprintf("n%d", i+1)
		cfg.ListenAddr = fmt.Sprintf("127.0.0.1:%d", c.Int("base-port")+i)
		cfg.Store.Dir = joinDir(dir, cfg.ID)
		cfg.Store.NoSync = c.Bool("no-sync")
		cfg.Pprof = c.Bool("pprof")
		cfg.Store.Logger = logger
		cfg.Ring.Replicas = c.Int("replicas")
		cfg.Control = NewControlPlane(cp)
		cfg.Logger = logger
		cfg.Auth = c.Bool("auth")
		if ca != nil {
			cert, key, err := ca.IssueNode(cfg.ID, []string{"127.0.0.1", "localhost"}, 30*24*time.Hour)
			if err != nil {
				return nodes, err
			}
			cfg.TLS, _ = pki.ServerConfig(cert, key, ca.CertPEM)
			cfg.PeerTLS, _ = pki.ClientConfig(cert, key, ca.CertPEM)
		}
		n, err := startNode(c.Context, cfg)
		if err != nil {
			return nodes, fmt.Errorf("node %s: %w", cfg.ID, err)
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func printDevBanner(c *ucli.Context, m *controlplane.Member, nodes []*datanode.Node) {
	w := c.App.Writer
	fmt.Fprintf(w, "stratum dev: etcd on %s, data in %s\n", m.ClientURLs()[0], c.String("dir"))
	scheme, curl := "http", "curl -s"
	if c.Bool("tls") {
		ca := joinDir(c.String("dir"), "certs", "ca.pem")
		scheme, curl = "https", "curl -s --cacert "+ca
		fmt.Fprintf(w, "TLS: trust %s (stratum --cacert %s --endpoint https://...)\n", ca, ca)
		certs := joinDir(c.String("dir"), "certs")
		fmt.Fprintf(w, "etcd wants a client certificate: stratum token ... --tls-ca %s --tls-cert %s --tls-key %s\n",
			ca, joinDir(certs, "etcd.pem"), joinDir(certs, "etcd-key.pem"))
	}
	for _, n := range nodes {
		url := scheme + "://" + n.Addr()
		fmt.Fprintf(w, "node %s  %s  try: %s %s/v1/cluster\n", n.ID(), url, curl, url)
	}
	if len(nodes) > 0 { // any node serves Git; a push creates the repository (docs/git.md)
		gitCA := map[bool]string{true: "-c http.sslCAInfo=" + joinDir(c.String("dir"), "certs", "ca.pem") + " ", false: ""}[c.Bool("tls")]
		fmt.Fprintf(w, "git: git %sclone %s://%s/git/demo/hello.git  (push to any node's /git/<repo>)\n", gitCA, scheme, nodes[0].Addr())
	}
}

// waitDevReady waits until every node is ready as its /readyz means it
// (every API serves, ref partitions included), or ctx is done.
func waitDevReady(ctx context.Context, nodes []*datanode.Node) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for _, n := range nodes {
		for n.Readiness() != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	return nil
}

// closeAll stops every node, reporting (not hiding) any node that did not
// stop cleanly.
func closeAll(w io.Writer, nodes []*datanode.Node) {
	for _, n := range nodes {
		if err := n.Close(context.Background()); err != nil {
			fmt.Fprintf(w, "stratum: node %s: %s\n", n.ID(), oneLine(err.Error()))
		}
	}
}

// devEtcdTLS puts the dev cluster's embedded etcd on TLS with client
// certificate auth, like a production member with --tls-*: it issues the
// member a certificate from the dev CA (files in certDir) and returns the
// client configuration the dev process itself uses.
func devEtcdTLS(mcfg *controlplane.MemberConfig, certDir string) (*tls.Config, error) {
	ca, err := devCA(certDir)
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.IssueMember("etcd", []string{"127.0.0.1", "localhost"}, 30*24*time.Hour)
	if err != nil {
		return nil, err
	}
	mcfg.TLSCertFile, mcfg.TLSKeyFile, mcfg.TLSCAFile = joinDir(certDir, "etcd.pem"), joinDir(certDir, "etcd-key.pem"), joinDir(certDir, "ca.pem")
	if err := pki.WriteFile(mcfg.TLSCertFile, cert, 0o644); err != nil {
		return nil, err
	}
	if err := pki.WriteFile(mcfg.TLSKeyFile, key, 0o600); err != nil {
		return nil, err
	}
	for i, u := range mcfg.ClientURLs {
		mcfg.ClientURLs[i] = strings.Replace(u, "http://", "https://", 1)
	}
	for i, u := range mcfg.PeerURLs {
		mcfg.PeerURLs[i] = strings.Replace(u, "http://", "https://", 1)
	}
	return pki.ClientConfig(cert, key, ca.CertPEM)
}

// devCA loads the dev cluster's CA from dir, or makes one there: a
// throwaway CA for a laptop cluster, kept across restarts so clients'
// --cacert stays valid.
func devCA(dir string) (*pki.CA, error) {
	if ca, err := pki.LoadCA(dir); err == nil {
		return ca, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ca, err := pki.NewCA("stratum dev CA", 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	return ca, ca.Save(dir)
}
