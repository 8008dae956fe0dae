package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/controlplane"
)

// `stratum token` manages API tokens in etcd directly: whoever can write
// etcd is the root of trust, so the first admin token needs no token.
// Nodes watch the records: a new token works and a revoked one stops
// working on every node within moments (docs/security.md).

// etcdClientFlags are the flags of a command that talks to etcd directly.
func etcdClientFlags() []ucli.Flag {
	return append([]ucli.Flag{
		&ucli.StringSliceFlag{Name: "etcd", Value: ucli.NewStringSlice("http://127.0.0.1:2379"), Usage: "etcd endpoints", EnvVars: []string{"STRATUM_ETCD"}},
		&ucli.StringFlag{Name: "etcd-prefix", Value: "/stratum/", Usage: "key prefix of this cluster in etcd"},
		&ucli.StringFlag{Name: "tls-cert", Usage: "certificate for an https etcd (stratum certs client)"},
		&ucli.StringFlag{Name: "tls-key", Usage: "its key"},
		&ucli.StringFlag{Name: "tls-ca", Usage: "the cluster CA's certificate"},
	}, etcdAuthFlags()...)
}

func tokenCommand() *ucli.Command {
	etcdFlags := etcdClientFlags()
	return &ucli.Command{
		Name:  "token",
		Usage: "create, list and revoke API tokens (in etcd)",
		Subcommands: []*ucli.Command{
			{Name: "create", Usage: "create a token and print it (it is shown only once)", ArgsUsage: "NAME",
				Flags: append([]ucli.Flag{&ucli.StringSliceFlag{Name: "scope", Usage: "read, write or admin (repeat; admin includes read and write)"}}, etcdFlags...),
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("token create takes one argument, the token's name; flags go before it")
					}
					rec, tok, err := api.NewToken(c.Args().First(), c.StringSlice("scope"))
					if err != nil {
						return usageError{err}
					}
					return withEtcd(c, func(cp *controlplane.Client) error {
						if err := cp.CreateToken(c.Context, rec); err != nil {
							return err
						}
						fmt.Fprintln(c.App.Writer, tok)
						return nil
					})
				}},
			{Name: "list", Usage: "list tokens (never their secrets)", Flags: etcdFlags,
				Action: func(c *ucli.Context) error {
					return withEtcd(c, func(cp *controlplane.Client) error {
						toks, err := cp.Tokens(c.Context)
						if err != nil {
							return err
						}
						tw := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
						fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED")
						for _, t := range toks {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, ","), t.Created.Format(time.RFC3339))
						}
						return tw.Flush()
					})
				}},
			{Name: "revoke", Usage: "revoke a token by its ID", ArgsUsage: "ID", Flags: etcdFlags,
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("token revoke takes one argument, the token's ID (token list shows it)")
					}
					return withEtcd(c, func(cp *controlplane.Client) error {
						found, err := cp.RevokeToken(c.Context, c.Args().First())
						if err != nil {
							return err
						}
						if !found {
							return fmt.Errorf("no token with ID %s", c.Args().First())
						}
						fmt.Fprintf(c.App.Writer, "revoked %s\n", c.Args().First())
						return nil
					})
				}},
		},
	}
}

// withEtcd runs f with a control-plane client from the command's flags.
func withEtcd(c *ucli.Context, f func(*controlplane.Client) error) error {
	_, etcdTLS, err := nodeTLS(c)
	if err != nil {
		return err
	}
	logger, _ := newLogger(c, c.App.ErrWriter)
	cp, err := dialControl(c, c.StringSlice("etcd"), c.String("etcd-prefix"), etcdTLS, logger)
	if err != nil {
		return err
	}
	defer cp.Close()
	return f(cp)
}
