package cli

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/internal/pki"
)

// This file is TLS on the command line: `stratum certs`, the data node's
// --tls-* flags and the clients' --cacert (docs/security.md).

func certsCommand() *ucli.Command {
	dir := &ucli.StringFlag{Name: "dir", Value: "certs", Usage: "directory of the CA and certificate files"}
	days := &ucli.IntFlag{Name: "days", Value: 365, Usage: "validity in days"}
	return &ucli.Command{
		Name:  "certs",
		Usage: "create a cluster CA and node certificates for TLS",
		Subcommands: []*ucli.Command{
			{Name: "ca", Usage: "create DIR/ca.pem and DIR/ca-key.pem", Flags: []ucli.Flag{dir, days,
				&ucli.StringFlag{Name: "name", Value: "stratum cluster CA", Usage: "the CA's common name"}},
				Action: func(c *ucli.Context) error {
					path := filepath.Join(c.String("dir"), "ca.pem")
					if _, err := os.Stat(path); err == nil {
						return usagef("%s exists; a new CA would orphan every certificate it signed", path)
					}
					if err := os.MkdirAll(c.String("dir"), 0o755); err != nil {
						return err
					}
					ca, err := pki.NewCA(c.String("name"), days2(c))
					if err != nil {
						return err
					}
					if err := ca.Save(c.String("dir")); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "wrote %s and ca-key.pem (keep the key offline)\n", path)
					return nil
				}},
			issueCommand("node", "a data node's certificate, its identity stratum-node:NAME (NAME is the node's --id)", (*pki.CA).IssueNode, dir, days),
			issueCommand("member", "an etcd member's certificate (stratum controlplane --tls-*), the only kind members accept on their peer port", (*pki.CA).IssueMember, dir, days),
			issueCommand("client", "a certificate for an operator's tool or an etcd client: neither a node nor a member", (*pki.CA).Issue, dir, days),
		},
	}
}

// issueCommand is `stratum certs node|member|client NAME`: DIR/NAME.pem and
// DIR/NAME-key.pem signed by DIR's CA, made by issue.
func issueCommand(kind, what string, issue func(*pki.CA, string, []string, time.Duration) ([]byte, []byte, error), dir, days ucli.Flag) *ucli.Command {
	return &ucli.Command{Name: kind, Usage: "create DIR/NAME.pem and DIR/NAME-key.pem signed by DIR's CA: " + what, ArgsUsage: "NAME", Flags: []ucli.Flag{dir, days,
		&ucli.StringSliceFlag{Name: "host", Usage: "an IP address or DNS name it is reached at (repeat; required)"}},
		Action: func(c *ucli.Context) error {
			name := c.Args().First()
			if c.NArg() != 1 || name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
				return usagef("certs %s takes one argument, the name (no slashes); flags go before it", kind)
			}
			if kind == "node" && !pki.NodeIDPattern.MatchString(name) {
				return usagef("certs node: %q is not a node ID (1-64 letters, digits, '.', '_' or '-')", name)
			}
			if len(c.StringSlice("host")) == 0 {
				return usagef("certs %s needs at least one --host it is reached at", kind)
			}
			ca, err := pki.LoadCA(c.String("dir"))
			if err != nil {
				return err
			}
			cert, key, err := issue(ca, name, c.StringSlice("host"), days2(c))
			if err != nil {
				return err
			}
			base := filepath.Join(c.String("dir"), name)
			if err := pki.WriteFile(base+".pem", cert, 0o644); err != nil {
				return err
			}
			if err := pki.WriteFile(base+"-key.pem", key, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "wrote %s.pem and %s-key.pem (%s %s) for %s\n", base, base, kind, name, strings.Join(c.StringSlice("host"), ", "))
			return nil
		}}
}

func days2(c *ucli.Context) time.Duration { return time.Duration(c.Int("days")) * 24 * time.Hour }

// nodeTLS loads the data node's TLS configurations from its flags: none
// when no flag is set, an error when only some are.
func nodeTLS(c *ucli.Context) (server, peer *tls.Config, err error) {
	certF, keyF, caF := c.String("tls-cert"), c.String("tls-key"), c.String("tls-ca")
	if certF == "" && keyF == "" && caF == "" {
		return nil, nil, nil
	}
	if certF == "" || keyF == "" || caF == "" {
		return nil, nil, usagef("TLS needs all of --tls-cert, --tls-key and --tls-ca")
	}
	var files [3][]byte
	for i, f := range []string{certF, keyF, caF} {
		if files[i], err = os.ReadFile(f); err != nil {
			return nil, nil, err
		}
	}
	if server, err = pki.ServerConfig(files[0], files[1], files[2]); err != nil {
		return nil, nil, err
	}
	peer, err = pki.ClientConfig(files[0], files[1], files[2])
	return server, peer, err
}

// clientTLS is the clients' trust: the CA in --cacert, or the system's
// roots when it is not set.
func clientTLS(c *ucli.Context) (*tls.Config, error) {
	f := c.String("cacert")
	if f == "" {
		return nil, nil
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, usageError{err}
	}
	return pki.TrustConfig(b)
}

// newClient is a client of url with the command line's TLS trust.
func newClient(c *ucli.Context, cfg client.Config) (*client.Client, error) {
	t, err := clientTLS(c)
	if err != nil {
		return nil, err
	}
	cfg.TLS, cfg.Token = t, c.String("token")
	cl, err := client.New(cfg)
	if err != nil {
		return nil, usageError{err}
	}
	return cl, nil
}

// nodeURL is the URL of a node at addr, in the scheme of --endpoint.
func nodeURL(c *ucli.Context, addr string) string {
	if strings.HasPrefix(c.String("endpoint"), "https://") {
		return "https://" + addr
	}
	return "http://" + addr
}
