package cli

import (
	"fmt"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/controlplane"
)

func nodeCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "node",
		Usage: "membership administration",
		Subcommands: []*ucli.Command{
			{
				Name:  "list",
				Usage: "list every node with its state, liveness and generation",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					cl, err := plainClient(c)
					if err != nil {
						return err
					}
					nodes, err := cl.Nodes(c.Context)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, map[string]any{"nodes": nodes})
					}
					return printNodes(c, nodes)
				},
			},
			{
				Name:      "drain",
				Usage:     "mark a node DRAINING: it takes no new writes and hands its objects over",
				ArgsUsage: "ID",
				Flags:     etcdClientFlags(),
				Action:    func(c *ucli.Context) error { return nodeAction(c, "drain", false) },
			},
			{
				Name:      "remove",
				Usage:     "remove a drained node from the cluster (--force for one that is not)",
				ArgsUsage: "ID",
				Flags:     append([]ucli.Flag{&ucli.BoolFlag{Name: "force", Usage: "remove even if objects may be left below their replication factor"}}, etcdClientFlags()...),
				Action:    func(c *ucli.Context) error { return nodeAction(c, "remove", c.Bool("force")) },
			},
		},
	}
}

func nodeAction(c *ucli.Context, action string, force bool) error {
	if c.NArg() != 1 {
		return usagef("node %s takes one argument, the node ID; flags go before it", action)
	}
	id := c.Args().First()
	if c.IsSet("etcd") { // straight to etcd, e.g. with root's credentials (docs/security.md)
		err := withEtcd(c, func(cp *controlplane.Client) error {
			if action == "drain" {
				return cp.Drain(c.Context, id)
			}
			return cp.Remove(c.Context, id, force)
		})
		if err != nil {
			return err
		}
	} else {
		cl, err := plainClient(c)
		if err != nil {
			return err
		}
		if err := cl.NodeAction(c.Context, id, action, force); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.App.Writer, "node %s: %s ok\n", c.Args().First(), action)
	return nil
}

func printNodes(c *ucli.Context, nodes []api.NodeStatus) error {
	tw := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tZONE\tSTATE\tLIVE\tIN RING\tDRAINED\tPARTITIONS\tGENERATION")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%t\t%t\t%d\t%s\n", n.ID, n.Addr, n.Zone, n.State, n.Live, n.InRing, n.Drained, n.Partitions, n.Generation)
	}
	return tw.Flush()
}
