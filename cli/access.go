package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/controlplane"
	"github.com/stratum-store/stratum/internal/atomicfile"
)

// `stratum access` turns on etcd access control and gives each data node
// an etcd user that may write only its own records (docs/security.md,
// "etcd access"). It talks to etcd directly, as root once access control
// is on.

func accessCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "access",
		Usage: "etcd users and roles: the control plane as root, each data node writing only its own records",
		Subcommands: []*ucli.Command{
			{Name: "enable", Usage: "create etcd's root user and turn etcd authentication on",
				Flags: append([]ucli.Flag{&ucli.StringFlag{Name: "root-password-file", Required: true,
					Usage: "file with root's password; created with a random one (mode 0600) if it does not exist"}}, etcdClientFlags()...),
				Action: func(c *ucli.Context) error {
					pw, created, err := passwordFile(c.String("root-password-file"))
					if err != nil {
						return err
					}
					if err := withEtcd(c, func(cp *controlplane.Client) error { return cp.EnableAccess(c.Context, pw) }); err != nil {
						return err
					}
					how := "read from"
					if created {
						how = "written to"
					}
					fmt.Fprintf(c.App.Writer, "etcd access control is on: every etcd client now needs credentials; root's password was %s %s\n",
						how, c.String("root-password-file"))
					return nil
				}},
			{Name: "node", Usage: "create (or reset) a data node's etcd user: it may read the cluster's records and write only its own", ArgsUsage: "ID",
				Flags: append([]ucli.Flag{&ucli.StringFlag{Name: "password-file", Required: true,
					Usage: "file with the node's password; created with a random one (mode 0600) if it does not exist"}}, etcdClientFlags()...),
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("access node takes one argument, the node ID; flags go before it")
					}
					id := c.Args().First()
					pw, _, err := passwordFile(c.String("password-file"))
					if err != nil {
						return err
					}
					if err := withEtcd(c, func(cp *controlplane.Client) error { return cp.GrantNode(c.Context, id, pw) }); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "etcd user %s created; start the node with --etcd-user %s --etcd-password-file %s --detector=false\n",
						controlplane.NodeUser(id), controlplane.NodeUser(id), c.String("password-file"))
					return nil
				}},
			{Name: "revoke", Usage: "delete a data node's etcd user and role: it loses its lease and stops serving", ArgsUsage: "ID",
				Flags: etcdClientFlags(),
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("access revoke takes one argument, the node ID")
					}
					id := c.Args().First()
					if err := withEtcd(c, func(cp *controlplane.Client) error { return cp.RevokeNode(c.Context, id) }); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "etcd user %s deleted\n", controlplane.NodeUser(id))
					return nil
				}},
		},
	}
}

// passwordFile reads the password in path, or, if there is no such file,
// writes a random one there (mode 0600) and reports created.
func passwordFile(path string) (pw string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if pw = strings.TrimRight(string(b), "\r\n"); pw == "" {
			return "", false, usagef("%s is empty", path)
		}
		return pw, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	var r [24]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", false, err
	}
	pw = hex.EncodeToString(r[:])
	if err := atomicfile.Write(path, 0o600, strings.NewReader(pw+"\n")); err != nil {
		return "", false, err
	}
	return pw, true, nil
}
