package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/api/client"
)

func jsonFlag() ucli.Flag { return &ucli.BoolFlag{Name: "json", Usage: "print the raw JSON document"} }

func clusterCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "cluster",
		Usage: "cluster-wide commands",
		Subcommands: []*ucli.Command{{
			Name:  "status",
			Usage: "show every node, whether it is live, and the ring revision",
			Flags: []ucli.Flag{jsonFlag()},
			Action: func(c *ucli.Context) error {
				cl, err := plainClient(c)
				if err != nil {
					return err
				}
				doc, err := cl.Cluster(c.Context)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, doc)
				}
				fmt.Fprintf(c.App.Writer, "ring revision %d, replication factor %d, seen by %s\n", doc.RingRevision, doc.ReplicationFactor, doc.Coordinator)
				tw := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NODE\tADDRESS\tZONE\tIN RING\tLIVE\tGENERATION")
				for _, n := range doc.Nodes {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\t%s\n", n.ID, n.Addr, n.Zone, n.InRing, n.Live, n.Generation)
				}
				return tw.Flush()
			},
		}},
	}
}

func ringCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "ring",
		Usage: "ring commands",
		Subcommands: []*ucli.Command{{
			Name:  "show",
			Usage: "show the ring the endpoint uses",
			Flags: []ucli.Flag{jsonFlag()},
			Action: func(c *ucli.Context) error {
				cl, err := plainClient(c)
				if err != nil {
					return err
				}
				doc, err := cl.Ring(c.Context)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, doc)
				}
				fmt.Fprintf(c.App.Writer, "revision %d, replication factor %d, %d vnodes per node\n", doc.Revision, doc.ReplicationFactor, doc.VNodes)
				tw := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NODE\tADDRESS\tZONE")
				for _, n := range doc.Nodes {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", n.ID, n.Addr, n.Zone)
				}
				return tw.Flush()
			},
		}},
	}
}

func plainClient(c *ucli.Context) (*client.Client, error) {
	cl, err := client.New(client.Config{Endpoint: c.String("endpoint")})
	if err != nil {
		return nil, usageError{err}
	}
	return cl, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
